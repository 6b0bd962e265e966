"""The lean pass-through (a GET or HEAD without Range or precondition fields, no predicate)
answers exactly as the full path does, for every shape of app and body.

A predicate that always says yes sends the same request down the full path (the lean one
never asks a predicate): both answers must agree in status, fields and bytes, and the app's
body must be closed once on each.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from adapters_matrix import DATA as SOURCE_DATA
from adapters_matrix import call_asgi, normalise
from inprocess import call, environ_for

from rangewsgi import RangeMiddleware
from rangewsgi.asgi import RangeMiddleware as ASGIRangeMiddleware

DATA = bytes(range(256)) * 40
ETAG = '"v1"'
MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
OPENED: list[Any] = []  # the files a file-body app opened for the request in progress
FIELDS = [("Content-Type", "video/mp4"), ("ETag", ETAG), ("Last-Modified", MODIFIED),
          ("Content-Length", str(len(DATA)))]


def always(*_: object) -> bool:
    return True


def wsgi_apps(path: Path) -> dict[str, Callable[..., Any]]:
    no_validators = [(n, v) for n, v in FIELDS if n not in ("ETag", "Last-Modified")]
    no_length = [(n, v) for n, v in FIELDS if n != "Content-Length"]
    shared = list(FIELDS)  # one list object for every response: never to be appended to
    coded = gzip.compress(DATA, mtime=0)

    def fixed(status: str, fields: list[tuple[str, str]], body: list[bytes]) -> Any:
        def app(environ: Any, start_response: Any) -> Any:
            start_response(status, list(fields))
            return list(body)
        return app

    def shared_list(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", shared)
        return [DATA]

    def late(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", list(FIELDS))
        yield DATA[:1000]
        yield DATA[1000:]

    def writes(environ: Any, start_response: Any) -> Iterable[bytes]:
        write = start_response("200 OK", list(no_validators))
        write(DATA[:1000])
        return [DATA[1000:]]

    def file_body(fields: list[tuple[str, str]]) -> Callable[..., Any]:
        def app(environ: Any, start_response: Any) -> Any:
            start_response("200 OK", list(fields))
            return environ["wsgi.file_wrapper"](open(path, "rb"), 4096)
        return app

    def error_page(environ: Any, start_response: Any) -> Any:
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return [b"error"]

    return {
        "list": fixed("200 OK", FIELDS, [DATA]),
        "list, shared fields": shared_list,
        "list, no validators": fixed("200 OK", no_validators, [DATA[:100], DATA[100:]]),
        "list, no length": fixed("200 OK", no_length, [DATA]),
        "generator": late,
        "write()": writes,
        "file, no validators": file_body([("Content-Type", "video/mp4")]),
        "file, validators": file_body([("Content-Type", "video/mp4"), ("ETag", ETAG)]),
        "404": fixed("404 Not Found", [("Content-Type", "text/plain"),
                                       ("Content-Length", "9")], [b"not found"]),
        "gzip, weak etag": fixed("200 OK", [("Content-Type", "video/mp4"),
                                            ("Content-Encoding", "gzip"), ("ETag", 'W/"g"'),
                                            ("Content-Length", str(len(coded)))], [coded]),
        "accept-ranges none": fixed("200 OK", [*FIELDS, ("Accept-Ranges", "none")], [DATA]),
        "exc_info": error_page,
    }


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lean") / "clip.mp4"
    path.write_bytes(DATA)
    return path


def wsgi_answer(app: Any, method: str, **options: Any) -> tuple[Any, int]:
    """The answer of ``app`` under the middleware, and how often the app's body closed."""
    closes = 0

    def counted(environ: Any, start_response: Any) -> Any:
        nonlocal closes
        body = app(environ, start_response)
        inner = body

        class Closing:
            def __iter__(self) -> Iterator[bytes]:
                return iter(inner)

            def close(self) -> None:
                nonlocal closes
                closes += 1
                close = getattr(inner, "close", None)
                if close is not None:
                    close()

        if hasattr(body, "filelike"):  # a file wrapper goes as it is: the server's to read
            OPENED.append(body.filelike)
            closes += 1  # counted by the file: closed once the answer is read (see below)
            return body
        return Closing()

    OPENED.clear()
    result = call(RangeMiddleware(counted, **options), method,
                  environ=environ_for(method), validate=False)
    assert all(file.closed for file in OPENED)
    return normalise(result.code, result.headers, result.body), closes


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("name", list(wsgi_apps(Path("/dev/null"))))
def test_wsgi_lean_answers_as_the_full_path(media: Path, name: str, method: str) -> None:
    app = wsgi_apps(media)[name]
    lean, lean_closes = wsgi_answer(app, method)
    full, full_closes = wsgi_answer(app, method, predicate=always)
    assert lean == full
    assert lean_closes == full_closes == 1
    if method == "GET" and lean.status == 200:
        assert lean.body == (gzip.compress(DATA, mtime=0) if "gzip" in name else DATA)


def test_wsgi_lean_never_appends_to_the_apps_field_list(media: Path) -> None:
    app = wsgi_apps(media)["list, shared fields"]
    for _ in range(3):
        answer, _closes = wsgi_answer(app, "GET")
        assert answer.field("accept-ranges") == "bytes"  # once: field() asserts it
    assert len(FIELDS) == 4


def test_wsgi_lean_head_sends_no_content(media: Path) -> None:
    answer, closes = wsgi_answer(wsgi_apps(media)["list"], "HEAD")
    assert answer.status == 200 and answer.body == b"" and closes == 1
    assert answer.field("accept-ranges") == "bytes"
    assert answer.field("content-length") == str(len(DATA))


# -- ASGI --

def asgi_apps(path: Path) -> dict[str, Callable[..., Any]]:
    encoded = [(n.lower().encode(), v.encode()) for n, v in FIELDS]
    no_validators = [(n, v) for n, v in encoded if n not in (b"etag", b"last-modified")]
    no_length = [(n, v) for n, v in encoded if n != b"content-length"]

    def messages(start_fields: list[tuple[bytes, bytes]], *rest: dict[str, Any],
                 status: int = 200) -> Callable[..., Any]:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": status,
                        "headers": list(start_fields)})
            for message in rest:
                await send(dict(message))
        return app

    def body(data: bytes, more: bool = False) -> dict[str, Any]:
        return {"type": "http.response.body", "body": data, "more_body": more}

    pathsend = {"type": "http.response.pathsend", "path": str(path)}

    async def source(scope: Any, receive: Any, send: Any) -> None:
        from adapters_matrix import Source

        from rangewsgi.asgi import SourceResponse

        await SourceResponse(Source())(scope, receive, send)

    return {
        "one body": messages(encoded, body(DATA)),
        "bodies": messages(encoded, body(DATA[:1000], True), body(DATA[1000:])),
        "no validators": messages(no_validators, body(DATA)),
        "no length": messages(no_length, body(DATA[:10], True), body(DATA[10:])),
        "path-send, validators": messages(encoded, pathsend),
        "path-send, no validators": messages([(b"content-type", b"video/mp4")], pathsend),
        "source": source,
        "404": messages([(b"content-length", b"9")], body(b"not found"), status=404),
    }


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("pathsend", [True, False], ids=["server path-send", "none"])
@pytest.mark.parametrize("name", list(asgi_apps(Path("/dev/null"))))
def test_asgi_lean_answers_as_the_full_path(media: Path, name: str, pathsend: bool,
                                            method: str) -> None:
    if name == "source":
        pytest.importorskip("starlette")
    app = asgi_apps(media)[name]
    request = {"Host": "example.test", "Accept": "*/*"}
    lean = call_asgi(ASGIRangeMiddleware(app), method, request, pathsend, raw=True)
    full = call_asgi(ASGIRangeMiddleware(app, predicate=always), method, request, pathsend,
                     raw=True)
    assert lean == full
    if method == "HEAD":
        if lean.field("accept-ranges") == "bytes":
            assert lean.body == b""  # answered here: no content (RFC 9110 9.3.2)
    elif lean.status == 200:
        assert lean.body == (SOURCE_DATA if name == "source" else DATA)
        assert lean.field("accept-ranges") == "bytes" or name == "no length"


def test_asgi_lean_adds_validators_to_a_path_send_file(media: Path) -> None:
    app = asgi_apps(media)["path-send, no validators"]
    for pathsend in (True, False):
        answer = call_asgi(ASGIRangeMiddleware(app), "GET", {}, pathsend)
        assert answer.field("etag") is not None and answer.field("last-modified") is not None
        assert answer.body == DATA


def test_asgi_lean_leaves_the_servers_scope_alone(media: Path) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await asgi_apps(media)["one body"](scope, receive, send)

    scope = {"type": "http", "method": "GET", "headers": [], "extensions": {},
             "asgi": {"version": "3.0", "spec_version": "2.5"}, "http_version": "1.1"}
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(ASGIRangeMiddleware(app)(scope, receive, send))
    assert scope["extensions"] == {} and scope["asgi"]["spec_version"] == "2.5"
    shown = seen[0]
    assert "http.response.pathsend" in shown["extensions"]
    assert shown["asgi"]["spec_version"] == "2.3"
    assert b"".join(m.get("body", b"") for m in sent[1:]) == DATA
