"""Run WSGI apps in-process through ``wsgiref.validate.validator``, with every body kind.

The environ is what wsgiref's server builds, including its ``wsgi.file_wrapper``; the response
is collected the way a server does it (iterate, then ``close()``).
"""

from __future__ import annotations

import io
import tempfile
import wsgiref.util
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

from rangewsgi import RangeMiddleware

BODY_KINDS = ("list", "generator", "lazy_generator", "file_wrapper", "file_wrapper_cl",
              "raw_file", "bytesio", "write")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Result:
    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status[:3])

    def header(self, name: str) -> str | None:
        lname = name.lower()
        values = [v for k, v in self.headers if k.lower() == lname]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None


@dataclass
class Tracker:
    """Counts close() calls on the inner body and remembers files opened."""

    closes: int = 0
    files: list[Any] = field(default_factory=list)


def chunked(data: bytes, sizes: Iterable[int]) -> list[bytes]:
    """Split ``data`` into chunks of the given sizes (cycled), with empty chunks kept."""
    out, pos = [], 0
    sizes = list(sizes) or [len(data) or 1]
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(data[pos:pos + size])
        pos += size
        i += 1
    return out


class _Closing:
    """An iterable over chunks whose close() is counted."""

    def __init__(self, chunks: Iterable[bytes], tracker: Tracker) -> None:
        self._it = iter(chunks)
        self._tracker = tracker

    def __iter__(self) -> Iterator[bytes]:
        return self._it

    def close(self) -> None:
        self._tracker.closes += 1


def make_app(kind: str, data: bytes, *, status: str = "200 OK",
             headers: list[tuple[str, str]] | None = None, chunk_sizes: Iterable[int] = (7,),
             tracker: Tracker | None = None, tmpdir: Path | None = None,
             with_length: bool = True) -> WSGIApp:
    """An inner app answering ``data`` with a body of the given kind."""
    tracker = tracker if tracker is not None else Tracker()
    base_headers = list(headers if headers is not None else
                        [("Content-Type", "application/octet-stream")])
    length_header = [("Content-Length", str(len(data)))] if with_length else []
    chunks = chunked(data, chunk_sizes)

    def open_file() -> Any:
        if kind == "bytesio":
            f: Any = io.BytesIO(data)
        else:
            directory = tmpdir or Path(tempfile.gettempdir())
            tmp = tempfile.NamedTemporaryFile(dir=directory, delete=False)  # noqa: SIM115
            tmp.write(data)
            tmp.close()
            f = open(tmp.name, "rb")  # noqa: SIM115
            Path(tmp.name).unlink()
        original_close = f.close

        def counted_close() -> None:
            tracker.closes += 1
            original_close()

        f.close = counted_close
        tracker.files.append(f)
        return f

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if kind in ("list", "generator"):
            start_response(status, base_headers + length_header)
            if kind == "list":
                return _Closing(chunks, tracker)
            return _Closing((c for c in chunks), tracker)
        if kind == "lazy_generator":
            def gen() -> Iterator[bytes]:
                start_response(status, base_headers + length_header)
                yield from chunks
            return _Closing(gen(), tracker)
        if kind == "write":
            write = start_response(status, base_headers + length_header)
            half = len(chunks) // 2
            for chunk in chunks[:half]:
                write(chunk)
            return _Closing(chunks[half:], tracker)
        f = open_file()
        if kind == "raw_file":
            start_response(status, base_headers + length_header)
            return f  # type: ignore[no-any-return]
        extra = length_header if kind == "file_wrapper_cl" else []
        start_response(status, base_headers + extra)
        return environ["wsgi.file_wrapper"](f, 4096)  # type: ignore[no-any-return]

    return app


def environ_for(method: str = "GET", headers: Mapping[str, str] | None = None,
                path: str = "/", file_wrapper: Any = wsgiref.util.FileWrapper) -> dict[str, Any]:
    # PEP 3333: QUERY_STRING "may be empty or absent"; servers send it, and wsgiref's
    # validator warns without it.
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "",
                               "QUERY_STRING": ""}
    wsgiref.util.setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO(b"")
    if file_wrapper is not None:
        environ["wsgi.file_wrapper"] = file_wrapper
    for key, value in (headers or {}).items():
        environ["HTTP_" + key.upper().replace("-", "_")] = value
    return environ


def call(app: WSGIApp, method: str = "GET", headers: Mapping[str, str] | None = None,
         environ: dict[str, Any] | None = None, validate: bool = True) -> Result:
    """Call ``app`` the way a server does; return status, headers and the whole body."""
    env = environ if environ is not None else environ_for(method, headers)
    captured: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"] = status
        captured["headers"] = headers
        return written.append

    wrapped = validator(app) if validate else app
    body = wrapped(env, start_response)
    try:
        for chunk in body:
            written.append(chunk)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return Result(captured["status"], captured["headers"], b"".join(written))


def ranged(kind: str, data: bytes, **kwargs: Any) -> Callable[..., Result]:
    """``RangeMiddleware(make_app(...))`` as a function of the request headers."""
    options = kwargs.pop("options", {})
    app = RangeMiddleware(make_app(kind, data, **kwargs), **options)

    def request(headers: Mapping[str, str] | None = None, method: str = "GET") -> Result:
        return call(app, method, headers)

    return request
