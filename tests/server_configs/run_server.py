"""Serve a WSGI application from ``serverapps`` with a pure-Python server, in the foreground.

Usage: ``python run_server.py SERVER PORT [APP]`` where SERVER is one of ``cheroot``,
``werkzeug-run-simple``, ``werkzeug-make-server``, ``wsgiref`` and APP an attribute of
``serverapps`` (default ``app``). The process runs until it is signalled.
"""

from __future__ import annotations

import sys
from typing import Any

import serverapps

HOST = "127.0.0.1"


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
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    name = sys.argv[3] if len(sys.argv) > 3 else "app"
    serve(sys.argv[1], int(sys.argv[2]), getattr(serverapps, name))
