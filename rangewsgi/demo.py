"""``python -m rangewsgi``: serve a directory or any WSGI app with byte ranges.

The directory app is deliberately range-unaware (a plain ``200`` with ``Content-Length``,
``ETag`` and ``Last-Modified``, its body through ``wsgi.file_wrapper``), so every ``206`` seen
comes from the middleware.
"""

from __future__ import annotations

import argparse
import html
import importlib
import logging
import math
import mimetypes
import os
import sys
import tempfile
import threading
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, unquote

from werkzeug.http import http_date
from werkzeug.serving import make_server

from .middleware import RangeMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["main", "make_directory_app", "serve"]

for _type, _ext in (("video/webm", ".webm"), ("audio/webm", ".weba"), ("audio/ogg", ".opus"),
                    ("audio/ogg", ".oga"), ("audio/mp4", ".m4a"), ("audio/flac", ".flac"),
                    ("audio/wav", ".wav"), ("video/mp4", ".mp4")):
    mimetypes.add_type(_type, _ext)

_VIDEO = {".mp4", ".webm", ".ogv", ".m4v", ".mov"}
_AUDIO = {".mp3", ".ogg", ".oga", ".opus", ".wav", ".flac", ".m4a", ".weba", ".aac"}
_BLOCK = 64 * 1024
_LOG_LOCK = threading.Lock()


def _page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "video{width:100%;max-height:60vh;background:#000}audio{width:100%}"
        "li{margin:.6rem 0}code{background:#eee;padding:0 .2rem}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    ).encode()


def _listing(root: Path, directory: Path, url_path: str) -> bytes:
    items = []
    base = url_path if url_path.endswith("/") else url_path + "/"
    if directory != root:
        items.append('<li><a href="../">../</a></li>')
    for entry in sorted(directory.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower())):
        name = entry.name + ("/" if entry.is_dir() else "")
        href = html.escape(base + quote(name))
        label = html.escape(name)
        suffix = entry.suffix.lower()
        player = ""
        if entry.is_file() and suffix in _VIDEO:
            player = f'<br><video controls preload="metadata" src="{href}"></video>'
        elif entry.is_file() and suffix in _AUDIO:
            player = f'<br><audio controls preload="metadata" src="{href}"></audio>'
        size = f" <small>({entry.stat().st_size:,} bytes)</small>" if entry.is_file() else ""
        items.append(f'<li><a href="{href}">{label}</a>{size}{player}</li>')
    note = ("<p>Served by a range-unaware file app. Seek in a player: the server log shows "
            "each <code>Range</code> request and its status.</p>")
    return _page(f"Index of {url_path}", note + "<ul>" + "".join(items) + "</ul>")


def make_directory_app(root: str | os.PathLike[str]) -> WSGIApplication:
    """A WSGI app serving files under ``root`` as plain ``200``s (it knows nothing of Range)."""
    top = Path(root).resolve()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"),
                                                      ("Content-Length", "0")])
            return []
        url_path = unquote(environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8",
                                                                                   "replace"))
        target = (top / url_path.lstrip("/")).resolve()
        if target != top and top not in target.parents:
            return _error(start_response, "404 Not Found")
        if target.is_dir():
            if not url_path.endswith("/"):
                start_response("301 Moved Permanently",
                               [("Location", quote(url_path + "/")), ("Content-Length", "0")])
                return []
            page = _listing(top, target, url_path)
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(len(page)))])
            return [page] if method == "GET" else []
        if not target.is_file():
            return _error(start_response, "404 Not Found")
        info = target.stat()
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        start_response("200 OK", [
            ("Content-Type", content_type),
            ("Content-Length", str(info.st_size)),
            ("ETag", f'"{info.st_mtime_ns:x}-{info.st_size:x}"'),
            ("Last-Modified", http_date(info.st_mtime)),
            ("Cache-Control", "no-cache"),
        ])
        if method == "HEAD":
            return []
        file = open(target, "rb")  # noqa: SIM115 - closed by the server through the wrapper
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return cast("Iterable[bytes]", wrapper(file, _BLOCK))
        return _read_all(file)

    return app


def _read_all(file: Any) -> Iterable[bytes]:
    with file:
        while block := file.read(_BLOCK):
            yield block


def _error(start_response: StartResponse, status: str) -> list[bytes]:
    body = status.encode() + b"\n"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _logged(app: WSGIApplication) -> WSGIApplication:
    """Print one line per request: method, path, Range header and the status answered."""

    def logging_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def logging_start(status: str, headers: list[tuple[str, str]],
                          exc_info: Any = None) -> Any:
            line = (f'{environ["REQUEST_METHOD"]} {environ.get("PATH_INFO", "")} '
                    f'Range={environ.get("HTTP_RANGE", "-")} -> {status.split(" ")[0]}\n')
            with _LOG_LOCK:  # one whole line per request, even from concurrent threads
                sys.stderr.write(line)
                sys.stderr.flush()
            return start_response(status, headers, exc_info)

        return app(environ, logging_start)

    return logging_app


def write_sample(directory: Path, minutes: int = 10) -> Path:
    """Write a WAV tone sweep long enough that seeking sends mid-file Range requests."""
    rate = 8000
    path = directory / "sweep.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        second = bytearray()
        for minute in range(minutes):
            pitch = 220 * 2 ** (minute / 4)
            second.clear()
            for i in range(rate):
                value = int(9000 * math.sin(2 * math.pi * pitch * i / rate))
                second += value.to_bytes(2, "little", signed=True)
            out.writeframes(bytes(second) * 60)
    return path


def _import_app(spec: str) -> WSGIApplication:
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in (attr or "application").split("."):
        obj = getattr(obj, part)
    return cast("WSGIApplication", obj)


def serve(app: WSGIApplication, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``app`` on werkzeug's threaded server until interrupted; print the URL."""
    server = make_server(host, port, app, threaded=True)
    shown = f"[{host}]" if ":" in host else host
    print(f"rangewsgi demo serving on http://{shown}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m rangewsgi",
        description="Serve a directory (through a range-unaware file app) or any WSGI app "
                    "(module:attribute) wrapped in RangeMiddleware.")
    parser.add_argument("target", nargs="?", default=".",
                        help="a directory to serve, or module:app to wrap (default: .)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any)")
    parser.add_argument("--max-ranges", type=int, default=100,
                        help="range-specs above this are ignored (default 100)")
    parser.add_argument("--no-ranges", action="store_true",
                        help="serve without the middleware, to see what clients do without it")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    parser.add_argument("--sample", action="store_true",
                        help="serve a generated 10-minute WAV tone sweep (no target needed)")
    args = parser.parse_args(argv)
    if args.sample:
        args.target = tempfile.mkdtemp(prefix="rangewsgi-sample-")
        write_sample(Path(args.target))
    if ":" in args.target and not Path(args.target).is_dir():
        sys.path.insert(0, os.getcwd())
        inner = _import_app(args.target)
    elif Path(args.target).is_dir():
        inner = make_directory_app(args.target)
    else:
        parser.error(f"{args.target!r} is neither a directory nor module:app")
    app = inner if args.no_ranges else RangeMiddleware(inner, max_ranges=args.max_ranges)
    # The request log below replaces werkzeug's own access log (it also shows Range).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    serve(app if args.quiet else _logged(app), args.host, args.port)
