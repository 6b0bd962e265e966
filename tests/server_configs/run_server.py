"""Serve a WSGI application with a server that runs inside this Python process, in the foreground.

Usage: ``python run_server.py SERVER PORT [APP]`` where SERVER is one of ``cheroot``,
``werkzeug-run-simple``, ``werkzeug-make-server``, ``wsgiref``, ``gevent``
(``gevent.pywsgi.WSGIServer``), ``bjoern``, ``twisted`` (``twisted.web.wsgi`` on the reactor's
thread pool) and APP an attribute of ``serverapps`` or a ``module:attr`` spec (default ``app``).
The process runs until it is signalled.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

HOST = "127.0.0.1"


def load(spec: str) -> Any:
    module, _, attr = spec.rpartition(":")
    return getattr(importlib.import_module(module or "serverapps"), attr)


def serve(server: str, port: int, app: Any) -> None:
    if server == "cheroot":
        from cheroot import wsgi

        httpd = wsgi.Server((HOST, port), app, numthreads=4)
        try:
            httpd.start()
        finally:
            httpd.stop()
    elif server == "werkzeug-run-simple":
        from werkzeug.serving import run_simple

        run_simple(HOST, port, app, threaded=True, use_reloader=False)
    elif server == "werkzeug-make-server":
        from werkzeug.serving import make_server

        make_server(HOST, port, app, threaded=True).serve_forever()
    elif server == "wsgiref":
        from wsgiref.simple_server import make_server as wsgiref_server

        wsgiref_server(HOST, port, app).serve_forever()
    elif server == "gevent":
        from gevent.pywsgi import WSGIServer

        WSGIServer((HOST, port), app, log=None).serve_forever()
    elif server == "bjoern":
        import bjoern

        bjoern.run(app, HOST, port)
    elif server == "twisted":
        from twisted.internet import reactor
        from twisted.web.server import Site
        from twisted.web.wsgi import WSGIResource

        pool = reactor.getThreadPool()  # type: ignore[attr-defined]
        pool.adjustPoolsize(1, 4)
        resource = WSGIResource(reactor, pool, app)
        reactor.listenTCP(port, Site(resource), interface=HOST)  # type: ignore[attr-defined]
        reactor.run()  # type: ignore[attr-defined]
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    spec = sys.argv[3] if len(sys.argv) > 3 else "app"
    serve(sys.argv[1], int(sys.argv[2]), load(spec))
