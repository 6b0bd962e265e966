"""One request matrix through both adapters, in process: the same representation served by a
WSGI app and by an ASGI app with every body kind, each answer reduced to what must agree.

Body kinds: ``list`` (one chunk with a length), ``stream`` (several chunks with a length),
``file`` (WSGI ``wsgi.file_wrapper`` over a file without validators, ASGI
``http.response.pathsend`` of the same file) and ``source`` (a ranged source: the WSGI body,
or ``asgi_sources.SourceResponse``).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inprocess import call, environ_for

from rangewsgi.conditions import file_validators

Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

DATA = bytes(range(256)) * 40 + b"tail"  # 10244 bytes
ETAG = '"matrix-v1"'
LAST_MODIFIED = "Sat, 21 Nov 2026 10:00:00 GMT"
MEDIA = "application/octet-stream"
BODY_KINDS = ("list", "stream", "file", "source")

REQUESTS: dict[str, dict[str, str]] = {
    "no range": {},
    "single": {"Range": "bytes=10-99"},
    "suffix": {"Range": "bytes=-100"},
    "multi": {"Range": "bytes=0-9,500-599"},
    "unsatisfiable": {"Range": "bytes=999999-"},
    "if-range match": {"Range": "bytes=10-19", "If-Range": "{etag}"},
    "if-range mismatch": {"Range": "bytes=10-19", "If-Range": '"other"'},
    "if-none-match": {"If-None-Match": "{etag}"},
    "if-match fails": {"If-Match": '"other"'},
}


@dataclass
class Answer:
    """What must agree between the adapters: status, fields (lower-case names, sorted, Date
    left out, the multipart boundary replaced) and body bytes (boundary replaced)."""

    status: int
    fields: list[tuple[str, str]]
    body: bytes

    def field(self, name: str) -> str | None:
        values = [value for key, value in self.fields if key == name]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None


_BOUNDARY = re.compile(r"boundary=([^\s;]+)")


def normalise(status: int, fields: Iterable[tuple[str, str]], body: bytes) -> Answer:
    kept = sorted((name.lower(), value) for name, value in fields if name.lower() != "date")
    for name, value in kept:
        if name == "content-type":
            found = _BOUNDARY.search(value)
            if found is not None:
                body = body.replace(found.group(1).encode("latin-1"), b"BOUNDARY")
    kept = [(name, _BOUNDARY.sub("boundary=BOUNDARY", value)) for name, value in kept]
    return Answer(status, kept, body)


def request_fields(name: str, etag: str) -> dict[str, str]:
    return {key: value.replace("{etag}", etag) for key, value in REQUESTS[name].items()}


def etag_of(kind: str, path: Path) -> str:
    """The ETag a client sees for ``kind``: the app's, or the one generated for the file."""
    if kind != "file":
        return ETAG
    info = os.stat(path)
    return file_validators(info.st_size, info.st_mtime_ns)[0]


class Source:
    """A ranged source over DATA that counts its reads and closes."""

    size = len(DATA)
    etag = ETAG
    last_modified = LAST_MODIFIED
    content_type = MEDIA

    def __init__(self) -> None:
        self.reads: list[tuple[int, int]] = []
        self.closes = 0

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        self.reads.append((start, stop))
        yield DATA[start:stop]

    def __iter__(self) -> Iterator[bytes]:
        self.reads.append((0, self.size))
        yield DATA

    def close(self) -> None:
        self.closes += 1


def _chunks(kind: str) -> list[bytes]:
    if kind == "list":
        return [DATA]
    return [DATA[i:i + 1000] for i in range(0, len(DATA), 1000)]


_APP_FIELDS = [("Content-Type", MEDIA), ("ETag", ETAG), ("Last-Modified", LAST_MODIFIED)]


# -- WSGI --

def wsgi_app(kind: str, path: Path) -> WSGIApp:
    """A range-unaware WSGI app answering DATA with a body of ``kind``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if kind == "file":
            start_response("200 OK", [("Content-Type", MEDIA)])
            return environ["wsgi.file_wrapper"](open(path, "rb"), 4096)  # type: ignore[no-any-return]
        start_response("200 OK", [*_APP_FIELDS, ("Content-Length", str(len(DATA)))])
        if kind == "source":
            return Source()  # type: ignore[return-value]
        if kind == "stream":
            return (chunk for chunk in _chunks(kind))
        return _chunks(kind)

    return app


def call_wsgi(app: WSGIApp, method: str, fields: Mapping[str, str]) -> Answer:
    result = call(app, method, environ=environ_for(method, fields), validate=True)
    return normalise(result.code, result.headers, result.body)


# -- ASGI --

def asgi_app(kind: str, path: Path) -> ASGIApp:
    """A range-unaware ASGI app answering DATA with a body of ``kind``."""
    encoded = [(name.lower().encode(), value.encode()) for name, value in _APP_FIELDS]
    length = (b"content-length", str(len(DATA)).encode())

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if kind == "source":
            from rangewsgi.asgi import SourceResponse

            await SourceResponse(Source())(scope, receive, send)
            return
        if kind == "file":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", MEDIA.encode())]})
            await send({"type": "http.response.pathsend", "path": str(path)})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*encoded, length]})
        chunks = _chunks(kind)
        for index, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk,
                        "more_body": index < len(chunks) - 1})

    return app


async def serve_asgi_async(app: ASGIApp, method: str, fields: Mapping[str, str],
                           pathsend: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request the way a server does it; the server offers path-send if ``pathsend``."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1", "method": method, "scheme": "http", "path": "/",
        "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in fields.items()],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "extensions": {"http.response.pathsend": {}} if pathsend else {},
    }
    done = asyncio.Event()
    requested = False
    status = 0
    headers: list[tuple[str, str]] = []
    body = bytearray()

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers
        assert not done.is_set(), f"{message['type']} after the response was complete"
        if message["type"] == "http.response.start":
            assert status == 0, "second http.response.start"
            status = message["status"]
            headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                       for k, v in message.get("headers", [])]
            return
        assert status, "body before http.response.start"
        if message["type"] == "http.response.pathsend":
            assert pathsend
            body.extend(Path(message["path"]).read_bytes())
            done.set()
            return
        assert message["type"] == "http.response.body", message["type"]
        body.extend(message.get("body", b""))
        if not message.get("more_body", False):
            done.set()

    await asyncio.wait_for(app(scope, receive, send), 30)
    assert done.is_set(), "the response was not completed"
    return status, headers, bytes(body)


def call_asgi(app: ASGIApp, method: str, fields: Mapping[str, str],
              pathsend: bool = True, raw: bool = False) -> Answer:
    """The normalised answer; ``raw``: a HEAD's content as sent, not dropped."""
    status, headers, body = asyncio.run(serve_asgi_async(app, method, fields, pathsend))
    if method == "HEAD" and not raw:
        body = b""  # a server drops a HEAD's content (RFC 9110 9.3.2), as the WSGI one does
    return normalise(status, headers, body)


def wsgi_head_body(answer: Answer) -> Answer:
    """A WSGI HEAD answer as a server sends it: no content."""
    return Answer(answer.status, answer.fields, b"")


# -- multipart --

def parts(answer: Answer) -> list[tuple[str, bytes]]:
    """The parts of a normalised multipart/byteranges body: (Content-Range, bytes)."""
    out = []
    for chunk in answer.body.split(b"--BOUNDARY")[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.partition(b"\r\n\r\n")
        ranges = [line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-range:")]
        out.append((ranges[0], content.removesuffix(b"\r\n")))
    return out
