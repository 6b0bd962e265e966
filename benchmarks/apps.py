"""The WSGI applications compared, in process and under gunicorn.

Every application serves the same representation at any path: the bare ones ignore Range, the
others answer it with rangewsgi, Werkzeug, WebOb, WhiteNoise or Flask.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

from benchmarks.common import WSGIApp

CTYPE = "application/octet-stream"


def file_headers(path: Path) -> list[tuple[str, str]]:
    st = os.stat(path)
    return [
        ("Content-Type", CTYPE),
        ("Content-Length", str(st.st_size)),
        ("Last-Modified", formatdate(st.st_mtime, usegmt=True)),
        ("ETag", f'"{st.st_mtime_ns:x}-{st.st_size:x}"'),
    ]


def bare_file(path: Path) -> WSGIApp:
    """A 200 with the file handed to the server's ``wsgi.file_wrapper`` (sendfile on gunicorn)."""
    headers = file_headers(path)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        f = open(path, "rb")  # noqa: SIM115 - closed by the server through the wrapper
        start_response("200 OK", list(headers))
        return environ["wsgi.file_wrapper"](f, 1 << 16)

    return app


def bare_list(chunks: list[bytes]) -> WSGIApp:
    """A 200 whose body is a list of bytes, with Content-Length."""
    headers = [("Content-Type", CTYPE), ("Content-Length", str(sum(map(len, chunks)))),
               ("ETag", '"list-body"')]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", list(headers))
        return chunks

    return app


def pattern_chunk(size: int) -> bytes:
    """A chunk whose bytes depend on their offset modulo 251 (a prime, so ranges show)."""
    return bytes(i % 251 for i in range(size))


def pattern_slice(chunk_size: int) -> Callable[[int, int], bytes]:
    """Bytes ``start:stop`` of a body made of ``pattern_chunk(chunk_size)`` repeated."""
    def part(start: int, stop: int) -> bytes:
        return bytes(((i % chunk_size) % 251) for i in range(start, stop))
    return part


def bare_generator(size: int, chunk: bytes) -> WSGIApp:
    """A 200 whose body is a generator of ``size`` bytes (``chunk`` repeated), with Content-Length.

    The generator calls ``start_response`` before its first chunk, as many frameworks do.
    """
    headers = [("Content-Type", CTYPE), ("Content-Length", str(size))]
    step = len(chunk)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", list(headers))
        full, rest = divmod(size, step)
        for _ in range(full):
            yield chunk
        if rest:
            yield chunk[:rest]

    return app


def range_options() -> dict[str, Any]:
    """Options that let the scaling runs ask for up to 100 ranges, if the option exists."""
    from rangewsgi import RangeMiddleware
    params = inspect.signature(RangeMiddleware).parameters
    return {"max_ranges": 100} if "max_ranges" in params else {}


def ranged(app: WSGIApp, **options: Any) -> WSGIApp:
    from rangewsgi import RangeMiddleware
    wrapped: WSGIApp = RangeMiddleware(app, **options)
    return wrapped


def werkzeug_send_file(path: Path) -> WSGIApp:
    from werkzeug.exceptions import HTTPException
    from werkzeug.utils import send_file

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            response = send_file(path, environ, mimetype=CTYPE, conditional=True)
        except HTTPException as exc:  # the 416, as a Werkzeug application answers it
            return exc(environ, start_response)
        return response(environ, start_response)

    return app


def werkzeug_list(chunks: list[bytes]) -> WSGIApp:
    from werkzeug.exceptions import HTTPException
    from werkzeug.wrappers import Response
    total = sum(map(len, chunks))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response = Response(chunks, mimetype=CTYPE)
        response.headers["Content-Length"] = str(total)
        response.set_etag("list-body")
        try:
            response.make_conditional(environ, accept_ranges=True, complete_length=total)
        except HTTPException as exc:
            return exc(environ, start_response)
        return response(environ, start_response)

    return app


def webob_fileapp(path: Path) -> WSGIApp:
    from webob.static import FileApp
    app: WSGIApp = FileApp(str(path), content_type=CTYPE)
    return app


def webob_list(chunks: list[bytes]) -> WSGIApp:
    from webob import Response
    total = sum(map(len, chunks))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response = Response(app_iter=chunks, content_type=CTYPE, content_length=total,
                            conditional_response=True, etag="list-body")
        return response(environ, start_response)

    return app


def whitenoise_dir(path: Path) -> WSGIApp:
    """WhiteNoise serving the directory that holds ``path`` (request ``/<name>``)."""
    from whitenoise import WhiteNoise

    def not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]

    app: WSGIApp = WhiteNoise(not_found, root=str(path.parent), max_age=None)
    return app


def flask_send_file(path: Path) -> WSGIApp:
    from flask import Flask, send_file
    flask_app = Flask("rangewsgi_bench")

    @flask_app.route("/<path:name>")
    def serve(name: str) -> Any:
        return send_file(path, mimetype=CTYPE, conditional=True)

    return flask_app.wsgi_app  # type: ignore[no-any-return]


FILE_APPS: dict[str, Callable[[Path], WSGIApp]] = {
    "bare": bare_file,
    "rangewsgi": lambda p: ranged(bare_file(p)),
    # The same, reading single ranges itself instead of handing them to the server's sendfile.
    "rangewsgi-read": lambda p: ranged(bare_file(p), use_file_wrapper=False),
    "werkzeug": werkzeug_send_file,
    "flask": flask_send_file,
    "webob": webob_fileapp,
    "whitenoise": whitenoise_dir,
}


def from_env() -> WSGIApp:
    """The gunicorn entry point: ``benchmarks.apps:from_env()`` with BENCH_APP and BENCH_FILE."""
    return FILE_APPS[os.environ["BENCH_APP"]](Path(os.environ["BENCH_FILE"]))
