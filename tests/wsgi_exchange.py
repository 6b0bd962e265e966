"""A small WSGI server loop, in-process: an exchange called the way gunicorn (``sendfile`` of
its own file wrapper) or wsgiref (iteration) would call it, and what it puts on the wire."""

from __future__ import annotations

import io
import os
import random
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from support import HOST

__all__ = ["CONTENT_RANGE", "FIELD_CHARS", "CountingBody", "Headers", "Served", "StartResponse",
           "WSGIApp", "data_for", "environ_for", "serve"]

StartResponse = Callable[..., Callable[[bytes], Any]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Headers = list[tuple[str, str]]
FIELD_CHARS = frozenset([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])  # 9110 5.5 field-value
CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)")  # 9110 14.4


def data_for(size: int) -> bytes:
    """Seeded bytes without a repeating pattern: an offset error changes the bytes."""
    return random.Random(size * 7919 + 1).randbytes(size)



@dataclass
class Served:
    """What a server would have put on the wire for one exchange."""

    status: str
    headers: Headers
    body: bytes
    sendfile: bool = False

    @property
    def code(self) -> int:
        return int(self.status[:3])

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(found) <= 1, f"{name} sent {len(found)} times: {self.headers}"
        return found[0] if found else None


def serve(app: WSGIApp, environ: dict[str, Any], *, truncate: bool = True) -> Served:
    """Call ``app`` as a WSGI server does and collect the response.

    For gunicorn's wrapper class with a real ``fileno()``, the body is what gunicorn's
    sendfile would send: ``Content-Length`` bytes from the descriptor's current offset.
    Otherwise the result is iterated. ``truncate`` stops at ``Content-Length`` as gunicorn
    and waitress do for a body that runs long; the server always calls ``close()``.
    """
    got: dict[str, Any] = {}
    out: list[bytes] = []

    def start_response(status: str, headers: Headers, exc_info: Any = None) -> Any:
        assert isinstance(status, str) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers)
        if exc_info is not None and out:
            raise exc_info[1].with_traceback(exc_info[2])
        got["status"], got["headers"] = status, list(headers)
        return out.append

    result = app(environ, start_response)
    used_sendfile = False
    try:
        wrapper = environ.get("wsgi.file_wrapper")
        filelike = getattr(result, "filelike", None)
        gunicorn = wrapper is GunicornFileWrapper and type(result) is GunicornFileWrapper
        fd = _fileno(filelike) if gunicorn else None
        if fd is not None:
            assert "status" in got
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            declared = _content_length(got["headers"])
            count = os.fstat(fd).st_size - offset  # sendfile stops at the end of the file
            if declared is not None:
                count = min(count, declared)
            out.append(os.pread(fd, count, offset))
            used_sendfile = True
        else:
            for chunk in result:
                assert isinstance(chunk, bytes), f"body chunk of type {type(chunk)}"
                out.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    body = b"".join(out)
    declared = _content_length(got["headers"])
    if truncate and declared is not None:
        body = body[:declared]
    return Served(got["status"], got["headers"], body, used_sendfile)


def _fileno(filelike: object) -> int | None:
    try:
        fd = filelike.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return fd if isinstance(fd, int) else None


def _content_length(headers: Headers) -> int | None:
    values = [v for k, v in headers if k.lower() == "content-length"]
    if len(values) != 1 or not re.fullmatch(r"[0-9]+", values[0].strip(" \t")):
        return None
    return int(values[0].strip(" \t"))


def environ_for(method: str = "GET", range_value: str | None = None,
                if_range: str | None = None, server_wrapper: type | None = None,
                uwsgi: bool = False) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": "/f", "QUERY_STRING": "",
        "SERVER_NAME": HOST, "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if range_value is not None:
        env["HTTP_RANGE"] = range_value
    if if_range is not None:
        env["HTTP_IF_RANGE"] = if_range
    if server_wrapper is not None:
        env["wsgi.file_wrapper"] = server_wrapper
    if uwsgi:
        env["uwsgi.version"] = b"2.0"
    return env


class CountingBody:
    """An iterable body that counts ``close()`` calls (PEP 3333: exactly once)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = chunks
        self.closes = 0

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closes += 1


