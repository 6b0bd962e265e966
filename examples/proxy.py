"""Proxy another HTTP server with byte ranges: one conditional ranged GET upstream per part.

Every ``GET``/``HEAD`` for ``/some/path`` becomes an ``HTTPSource`` over
``UPSTREAM/some/path``: its size and validators come from one ``HEAD`` upstream, and
``RangeMiddleware`` asks it for exactly the ranges the client wants, each as one upstream
``GET`` with ``Range`` and ``If-Match`` (so a file replaced upstream mid-response aborts it
instead of mixing two versions). A plain GET streams the whole resource once. Upstream 404 is
a 404 here, 401/403 a 403, anything else failing a 502.

    python examples/proxy.py --upstream http://127.0.0.1:8080 --port 8000
    curl -r 0-99,-100 http://127.0.0.1:8000/videos/clip.mp4

Needs ``pip install rangewsgi[http]`` (urllib3).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

import urllib3
from werkzeug.serving import run_simple

from rangewsgi import RangeMiddleware
from rangewsgi.sources.http import HTTPSource


def _plain(start_response: Callable[..., Any], status: str) -> Iterable[bytes]:
    body = f"{status}\n".encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make_app(upstream: str, pool: urllib3.PoolManager | None = None) -> RangeMiddleware:
    """A WSGI app that serves ``upstream``'s resources with ranges."""
    base = upstream.rstrip("/")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed")
        target = quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/:@!$&'()*+,;=~")
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        try:
            source = HTTPSource(base + target, pool=pool)
        except FileNotFoundError:
            return _plain(start_response, "404 Not Found")
        except PermissionError:
            return _plain(start_response, "403 Forbidden")
        except OSError:
            return _plain(start_response, "502 Bad Gateway")
        headers = [("Content-Type", source.content_type or "application/octet-stream")]
        if source.content_encoding:  # stored encoded (a .gz as gzip): ranges count those bytes
            headers.append(("Content-Encoding", source.content_encoding))
        start_response("200 OK", headers)
        return source

    return RangeMiddleware(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    print(f"proxying {args.upstream} on http://{args.host}:{args.port}/", flush=True)
    run_simple(args.host, args.port, make_app(args.upstream), threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
