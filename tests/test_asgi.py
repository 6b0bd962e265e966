"""The ASGI adapter in-process: a hand-written server (``receive``/``send``), no sockets.

The fake server behaves as the real ones do where it matters: ``http.disconnect`` once the
response is complete or the client has gone, an ``OSError`` from ``send`` after the client
has gone (ASGI spec 2.4), strict ordering of messages and Content-Length framing, and the
path-send extension only when asked to offer it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from asgi_launch import require_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inprocess import Result, chunked
from inprocess import call as wsgi_call
from rfc_model import (
    DATE,
    DATES,
    LM,
    TAG_FIELDS,
    check,
    if_range_header,
    model_preconditions,
    model_request,
    range_header,
)
from support import parse_multipart

import rangewsgi.asgi
import rangewsgi.asgi_bodies
from rangewsgi import RangeMiddleware as WSGIRangeMiddleware
from rangewsgi.asgi import DROP_BYTES, DROP_MESSAGES, RangeMiddleware, ResponseClosed
from rangewsgi.files import TruncatedBody

DATA = bytes(range(256)) * 64 + b"tail"  # 16388 bytes
Message = dict[str, Any]
ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Message]],
                    Callable[[Message], Awaitable[None]]], Awaitable[None]]
REASONS = {416: "Range Not Satisfiable"}  # RFC 9110 15.5.17 (Python says "Requested ...")
BODY_KINDS = ("bytes", "stream", "stream_last", "pathsend", "pathsend_no_length")


class ClientGone(OSError):
    """The fake server's own disconnect error (ASGI "Disconnected Client - send exception")."""


@dataclass
class Served:
    """What the fake server put on the wire, and how the app's call ended."""

    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False
    messages: list[Message] = field(default_factory=list)
    error: BaseException | None = None

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    def result(self) -> Result:
        """As ``inprocess.Result`` (a status line), for the checks the WSGI tests use."""
        phrase = REASONS.get(self.status) or HTTPStatus(self.status).phrase
        return Result(f"{self.status} {phrase}", self.headers, self.body)


def make_scope(method: str = "GET", headers: Mapping[str, str] | None = None, *,
               pathsend: bool = False, spec: str = "2.4", http_version: str = "1.1",
               scope_type: str = "http") -> dict[str, Any]:
    return {
        "type": scope_type, "asgi": {"version": "3.0", "spec_version": spec},
        "http_version": http_version, "method": method, "scheme": "http", "path": "/",
        "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "extensions": {"http.response.pathsend": {}} if pathsend else {},
    }


async def serve_async(app: ASGIApp, method: str = "GET",
                      headers: Mapping[str, str] | None = None, *, pathsend: bool = False,
                      spec: str = "2.4", gone_after: int | None = None,
                      raise_on_gone: bool = True, scope: dict[str, Any] | None = None,
                      timeout: float = 10.0) -> Served:
    """Run ``app`` for one request the way a server does; never raises from the app."""
    served = Served()
    scope = scope if scope is not None else make_scope(method, headers, pathsend=pathsend,
                                                       spec=spec)
    done = asyncio.Event()  # the response is complete, or the client has gone
    gone = False
    state = {"requested": False, "expected": None}

    async def receive() -> Message:
        if not state["requested"]:
            state["requested"] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal gone
        served.messages.append(message)
        if gone:
            if raise_on_gone:
                raise ClientGone("client disconnected")
            return
        kind = message["type"]
        if kind == "http.response.start":
            assert served.status == 0, "second http.response.start"
            served.status = message["status"]
            served.headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                              for k, v in message.get("headers", [])]
            for name, _ in served.headers:
                assert name == name.lower(), f"header name not lowercased: {name}"
            length = served.header("content-length")
            state["expected"] = int(length) if length is not None else None
            return
        assert served.status, f"{kind} before http.response.start"
        assert not served.complete, f"{kind} after the response was complete"
        if kind == "http.response.pathsend":
            assert "http.response.pathsend" in scope["extensions"]
            served.body += Path(message["path"]).read_bytes()
            more = False
        else:
            assert kind == "http.response.body", kind
            served.body += bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
        if gone_after is not None and len(served.body) >= gone_after:
            gone = True
            done.set()
            if raise_on_gone:
                raise ClientGone("client disconnected")
            return
        if not more:
            served.complete = True
            done.set()
            if method != "HEAD" and state["expected"] is not None:
                assert len(served.body) == state["expected"], "body length != Content-Length"

    try:
        await asyncio.wait_for(app(scope, receive, send), timeout)
    except Exception as exc:
        served.error = exc
    # Every task the middleware started has ended with the call (none left running).
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    return served


def serve(app: ASGIApp, method: str = "GET", headers: Mapping[str, str] | None = None,
          **kwargs: Any) -> Served:
    return asyncio.run(serve_async(app, method, headers, **kwargs))


@dataclass
class Tracker:
    """How the inner app's call ended, and the files the middleware opened."""

    calls: int = 0
    ended: int = 0
    stopped: int = 0  # send raised an OSError: the app stopped as on a client disconnect
    files: list[io.FileIO] = field(default_factory=list)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[io.FileIO]]:
    """Every file the middleware opens for a path-send; all must be closed at the end."""
    files: list[io.FileIO] = []
    original = rangewsgi.asgi_bodies._open

    def tracked(path: str) -> io.FileIO:
        file = original(path)
        files.append(file)
        return file

    monkeypatch.setattr(rangewsgi.asgi_bodies, "_open", tracked)
    yield files
    assert all(f.closed for f in files), "a path-send file left open"


def make_app(kind: str, data: bytes, *, status: int = 200,
             headers: list[tuple[str, str]] | None = None, chunk_sizes: tuple[int, ...] = (7,),
             tracker: Tracker | None = None, path: Path | None = None,
             with_length: bool = True, fail: str | None = None) -> ASGIApp:
    """A raw ASGI app answering ``data`` with a body of ``kind``; ``fail`` raises at
    "start" (before the response) or "body" (after its first body message)."""
    tracker = tracker if tracker is not None else Tracker()
    base = list(headers if headers is not None else
                [("content-type", "application/octet-stream")])
    if with_length and kind != "pathsend_no_length":
        base.append(("content-length", str(len(data))))
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in base]

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Message]],
                  send: Callable[[Message], Awaitable[None]]) -> None:
        tracker.calls += 1
        try:
            request = await receive()
            assert request["type"] == "http.request"
            if fail == "start":
                raise RuntimeError("failed before the response")
            await send({"type": "http.response.start", "status": status, "headers": raw})
            if kind == "bytes":
                await send({"type": "http.response.body", "body": data})
            elif kind.startswith("pathsend"):
                assert path is not None
                if "http.response.pathsend" in scope.get("extensions", {}):
                    await send({"type": "http.response.pathsend", "path": str(path)})
                else:
                    await send({"type": "http.response.body", "body": path.read_bytes()})
            else:
                pieces = chunked(data, chunk_sizes)
                for index, piece in enumerate(pieces):
                    last = kind == "stream_last" and index == len(pieces) - 1
                    await send({"type": "http.response.body", "body": piece,
                                "more_body": not last})
                    if fail == "body":
                        raise RuntimeError("failed after the response started")
                    if kind == "stream":
                        # Empty chunks are tolerated anywhere.
                        await send({"type": "http.response.body", "body": b"",
                                    "more_body": True})
                if kind == "stream" or not pieces:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            tracker.stopped += 1
            raise
        finally:
            tracker.ended += 1

    return app


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return path


def ranged(kind: str, data: bytes = DATA, path: Path | None = None, pathsend: bool = False,
           tracker: Tracker | None = None, **options: Any) -> Callable[..., Served]:
    """The middleware over ``make_app``; bodies that are not files carry an ETag."""
    headers = [("content-type", "application/octet-stream")]
    if not kind.startswith("pathsend"):
        headers.append(("etag", '"s1"'))
    app = RangeMiddleware(make_app(kind, data, path=path, tracker=tracker, headers=headers),
                          **options)

    def request(headers: Mapping[str, str] | None = None, method: str = "GET") -> Served:
        return serve(app, method, headers, pathsend=pathsend)

    return request


# -- the answers --


@pytest.mark.parametrize("kind", BODY_KINDS)
@pytest.mark.parametrize("server_pathsend", [False, True])
def test_single_range_of_every_body(kind: str, server_pathsend: bool, data_path: Path,
                                    opened: list[io.FileIO]) -> None:
    tracker = Tracker()
    result = ranged(kind, path=data_path, pathsend=server_pathsend,
                    tracker=tracker)({"Range": "bytes=100-1099"})
    assert result.error is None and result.complete
    assert result.status == 206
    assert result.header("content-range") == f"bytes 100-1099/{len(DATA)}"
    assert result.header("content-length") == "1000"
    assert result.body == DATA[100:1100]
    assert tracker.ended == 1
    # The response is finished with the last needed byte: a stream that goes on regardless
    # (it never listens for http.disconnect) is stopped past the drop caps.
    if kind.startswith("stream"):
        assert tracker.stopped == 1
    if kind.startswith("pathsend"):
        assert len(opened) == 1


@pytest.mark.parametrize("kind", BODY_KINDS)
def test_multipart_of_every_body(kind: str, data_path: Path, opened: list[io.FileIO]) -> None:
    result = ranged(kind, path=data_path)({"Range": "bytes=9000-9009, 0-4, -3"})
    assert result.status == 206 and result.complete
    content_type = result.header("content-type") or ""
    assert content_type.startswith("multipart/byteranges; boundary=")
    assert result.header("content-length") == str(len(result.body))
    parts = parse_multipart(result.body, content_type)
    spans = [(9000, 9010), (0, 5), (len(DATA) - 3, len(DATA))]
    if not kind.startswith("pathsend"):
        spans.sort()  # a stream cannot go back: ascending parts
    assert [(p[0]["content-range"], p[1]) for p in parts] == [
        (f"bytes {a}-{b - 1}/{len(DATA)}", DATA[a:b]) for a, b in spans]


@pytest.mark.parametrize("kind", BODY_KINDS)
def test_unsatisfiable_stops_the_app_unread(kind: str, data_path: Path,
                                            opened: list[io.FileIO]) -> None:
    tracker = Tracker()
    result = ranged(kind, path=data_path, tracker=tracker)({"Range": f"bytes={len(DATA)}-"})
    assert result.status == 416 and result.error is None and result.complete
    assert result.header("content-range") == f"bytes */{len(DATA)}"
    assert result.body == b"416 Range Not Satisfiable\n"
    assert tracker.ended == 1
    # Nothing of the inner body reached the wire: one message, the middleware's own.
    assert [m["type"] for m in result.messages] == ["http.response.start", "http.response.body"]


@pytest.mark.parametrize("kind", BODY_KINDS)
def test_not_modified_for_the_etag_of_the_200(kind: str, data_path: Path,
                                              opened: list[io.FileIO]) -> None:
    tracker = Tracker()
    request = ranged(kind, path=data_path, tracker=tracker)
    first = request()
    assert first.status == 200 and first.body == DATA
    etag = first.header("etag")
    assert etag is not None and etag.startswith('"')
    second = request({"If-None-Match": etag})
    assert second.status == 304 and second.body == b"" and second.complete
    assert second.header("etag") == etag
    assert second.header("content-length") is None
    assert tracker.ended == tracker.calls == 2


@pytest.mark.parametrize("kind", BODY_KINDS)
def test_precondition_failed(kind: str, data_path: Path, opened: list[io.FileIO]) -> None:
    result = ranged(kind, path=data_path)({"If-Match": '"other"'})
    assert result.status == 412 and result.body == b"412 Precondition Failed\n"


@pytest.mark.parametrize("kind", BODY_KINDS)
def test_head_carries_no_content(kind: str, data_path: Path, opened: list[io.FileIO]) -> None:
    # RFC 9110 14.2: no ranges for HEAD; 9.3.2: the GET's header fields, no content. One
    # empty body message only (daphne writes every HEAD body message after the first).
    tracker = Tracker()
    result = ranged(kind, path=data_path, tracker=tracker)({"Range": "bytes=0-9"}, "HEAD")
    assert result.status == 200 and result.body == b"" and result.complete
    assert result.header("accept-ranges") == "bytes"
    assert result.header("content-length") == str(len(DATA))
    bodies = [m for m in result.messages if m["type"] != "http.response.start"]
    assert bodies == [{"type": "http.response.body", "body": b"", "more_body": False}]
    assert tracker.ended == 1


def test_head_hides_range_from_the_app() -> None:
    seen: list[list[tuple[bytes, bytes]]] = []
    inner = make_app("bytes", DATA)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(list(scope["headers"]))
        await inner(scope, receive, send)

    serve(RangeMiddleware(app), "HEAD", {"Range": "bytes=0-1", "If-Range": '"x"', "X-A": "1"})
    assert seen == [[(b"x-a", b"1")]]


@pytest.mark.parametrize("pieces", [[b"hello world"], [b"hello ", b"world", b""]],
                         ids=["one", "streamed"])
def test_head_passed_through_goes_as_the_app_gave_it(pieces: list[bytes]) -> None:
    # RFC 9110 9.3.2, 8.6: a HEAD the middleware does not answer (no length: passed through)
    # reaches the server exactly as the app sent it, body included; the server drops the
    # content and frames the answer as for the GET, as it does without the middleware.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for number, piece in enumerate(pieces, 1):
            await send({"type": "http.response.body", "body": piece,
                        "more_body": number < len(pieces)})

    bare = serve(app, "HEAD")
    wrapped = serve(RangeMiddleware(app), "HEAD", {"Range": "bytes=0-1"})
    assert wrapped.error is None and wrapped.messages == bare.messages
    assert wrapped.body == b"".join(pieces)  # the server's to drop


@pytest.mark.parametrize("kind", BODY_KINDS)
def test_if_range(kind: str, data_path: Path, opened: list[io.FileIO]) -> None:
    request = ranged(kind, path=data_path)
    etag = request().header("etag")
    assert etag is not None
    hit = request({"Range": "bytes=5-9", "If-Range": etag})
    assert hit.status == 206 and hit.body == DATA[5:10]
    miss = request({"Range": "bytes=5-9", "If-Range": '"stale"'})
    assert miss.status == 200 and miss.body == DATA


def test_pathsend_file_gets_validators_from_the_file(data_path: Path,
                                                     opened: list[io.FileIO]) -> None:
    result = ranged("pathsend_no_length", path=data_path)()
    assert result.status == 200 and result.body == DATA
    assert result.header("content-length") == str(len(DATA))
    assert result.header("etag") is not None
    assert result.header("last-modified") == "Tue, 14 Nov 2023 22:13:20 GMT"


def test_full_pathsend_goes_to_the_servers_pathsend(data_path: Path,
                                                    opened: list[io.FileIO]) -> None:
    result = ranged("pathsend", path=data_path, pathsend=True)()
    assert result.status == 200 and result.body == DATA
    assert [m["type"] for m in result.messages][-1] == "http.response.pathsend"
    result = ranged("pathsend", path=data_path, pathsend=True)({"Range": "bytes=1-"})
    assert result.status == 206 and result.body == DATA[1:]
    assert "http.response.pathsend" not in [m["type"] for m in result.messages]


def test_pathsend_shorter_than_its_length_passes_through(tmp_path: Path,
                                                         opened: list[io.FileIO]) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(DATA[:100])
    app = RangeMiddleware(make_app("pathsend", DATA, path=path))  # claims 16388 bytes
    result = serve(app, "GET", {"Range": "bytes=0-9"})
    # The core's rule: a file shorter than its Content-Length is not ranged (PASS), and the
    # bytes the app named go out as they are (a server would cut the response, as here).
    assert result.status == 200 and result.body == DATA[:100]
    assert result.header("content-range") is None


def test_missing_pathsend_file_raises_before_the_response(tmp_path: Path) -> None:
    app = RangeMiddleware(make_app("pathsend", DATA, path=tmp_path / "missing"))
    result = serve(app, "GET", {"Range": "bytes=0-9"})
    assert isinstance(result.error, FileNotFoundError) and result.status == 0


def test_non_200_and_app_ranged_pass_through_byte_for_byte() -> None:
    for status, extra in ((404, []), (206, [("content-range", "bytes 0-9/20")]),
                          (200, [("accept-ranges", "none")])):
        headers = [("content-type", "text/plain"), *extra]
        bare = serve(make_app("stream", DATA, status=status, headers=headers), "GET",
                     {"Range": "bytes=0-1"})
        wrapped = serve(RangeMiddleware(make_app("stream", DATA, status=status,
                                                 headers=headers)),
                        "GET", {"Range": "bytes=0-1"})
        assert wrapped.messages == bare.messages


def test_unknown_length_stream_passes_through() -> None:
    app = make_app("stream", DATA, with_length=False)
    wrapped = serve(RangeMiddleware(app), "GET", {"Range": "bytes=0-1"})
    assert wrapped.status == 200 and wrapped.body == DATA
    assert wrapped.header("accept-ranges") is None and wrapped.header("content-length") is None


def test_trailers_pass_through() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"abcd"})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})

    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    asyncio.run(RangeMiddleware(app)(make_scope("GET", {"Range": "bytes=0-1"}), receive,
                                     send))
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body",
                                             "http.response.trailers"]
    assert messages[1]["body"] == b"abcd"


# -- what passes through untouched --


@pytest.mark.parametrize(("scope_type", "method"), [
    *(("http", m) for m in ["POST", "PUT", "get", "OPTIONS", "DELETE"]),
    ("websocket", "GET"), ("lifespan", "GET"),
])
def test_what_is_not_ours_is_not_touched(scope_type: str, method: str) -> None:
    """Other methods, websocket and lifespan scopes reach the app with the server's own
    scope, receive and send."""
    calls: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send))

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        pass

    scope = make_scope(method, {"Range": "bytes=0-1"}, scope_type=scope_type)
    asyncio.run(RangeMiddleware(app)(scope, receive, send))
    assert calls == [(scope, receive, send)]
    assert calls[0][0] is scope


def test_scope_is_copied_and_pathsend_offered_on_the_copy() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        await make_app("bytes", DATA)(scope, receive, send)

    scope = make_scope("GET", {"Range": "bytes=0-1"})
    scope["extensions"] = {"http.response.zerocopysend": {}, "x": {}}
    before = {"extensions": dict(scope["extensions"]), "headers": list(scope["headers"])}
    serve(RangeMiddleware(app), scope=scope)
    assert seen[0] is not scope
    assert seen[0]["extensions"] == {"http.response.pathsend": {}, "rangewsgi.source": {},
                                     "x": {}}
    assert scope["extensions"] == before["extensions"]
    assert scope["headers"] == before["headers"]


# -- exactly once: the app's call ends, files close, errors go where they belong --


def test_error_before_the_response_propagates() -> None:
    tracker = Tracker()
    app = RangeMiddleware(make_app("stream", DATA, tracker=tracker, fail="start"))
    result = serve(app, "GET", {"Range": "bytes=0-9"})
    assert isinstance(result.error, RuntimeError) and result.status == 0
    assert tracker.ended == 1


def test_error_after_the_response_started_cuts_it() -> None:
    tracker = Tracker()
    app = RangeMiddleware(make_app("stream", DATA, tracker=tracker, fail="body"))
    result = serve(app, "GET", {"Range": "bytes=0-99"})
    assert isinstance(result.error, RuntimeError)
    assert result.status == 206 and not result.complete
    assert result.body == DATA[:7]
    assert tracker.ended == 1


def test_body_shorter_than_its_length_cuts_the_range() -> None:
    app = RangeMiddleware(make_app("stream", DATA[:50], headers=[("content-length", "100")],
                                   with_length=False))
    result = serve(app, "GET", {"Range": "bytes=40-89"})
    assert isinstance(result.error, TruncatedBody)
    assert result.status == 206 and not result.complete and result.body == DATA[40:50]


@pytest.mark.parametrize("kind", ["stream", "pathsend"])
@pytest.mark.parametrize("raise_on_gone", [True, False])
def test_client_gone_mid_range(kind: str, raise_on_gone: bool, data_path: Path,
                               opened: list[io.FileIO]) -> None:
    tracker = Tracker()
    app = RangeMiddleware(make_app(kind, DATA, path=data_path, tracker=tracker,
                                   chunk_sizes=(512,)), block_size=1024)
    result = asyncio.run(serve_async(app, "GET", {"Range": "bytes=1000-15999"},
                                     gone_after=3000, raise_on_gone=raise_on_gone))
    # A clean end for the server: nothing raised, nothing to log.
    assert result.error is None and not result.complete
    assert result.body.startswith(DATA[1000:4000])
    assert tracker.ended == 1
    if kind == "pathsend":
        # The range stopped early: the client's disconnect was seen.
        assert len(result.body) < len(DATA) - 1000


def test_client_gone_mid_range_when_the_server_cancels_the_app(data_path: Path,
                                                               opened: list[io.FileIO]) -> None:
    async def main() -> None:
        big = data_path.parent / "big.bin"
        big.write_bytes(DATA * 200)
        inner = make_app("pathsend", DATA * 200, path=big)
        app = RangeMiddleware(inner, block_size=4096)
        sent = asyncio.Event()
        requests = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> Message:
            if requests:
                return requests.pop()
            await asyncio.Event().wait()
            raise AssertionError

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                sent.set()
                await asyncio.sleep(0.001)

        task = asyncio.ensure_future(app(make_scope("GET", {"Range": "bytes=1-"}), receive,
                                         send))
        await sent.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the read in flight returns, then the file closes
            if all(f.closed for f in opened):
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())


def test_sends_after_the_answer_are_dropped_without_an_error() -> None:
    # "Disconnected Client": the answer is complete after 2 bytes; what the app sends next
    # goes nowhere and raises nothing (as on uvicorn and daphne after a disconnect), and
    # receive tells it the client is gone.
    told: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10")]})
        for byte in b"0123456789":
            await send({"type": "http.response.body", "body": bytes([byte]),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        told.append(await receive())

    result = serve(RangeMiddleware(app), "GET", {"Range": "bytes=0-1"})
    assert result.status == 206 and result.body == b"01" and result.complete
    assert result.error is None and told == [{"type": "http.disconnect"}]
    assert len(result.messages) == 3  # the start and the two bytes: nothing after


def endless_app(sent: list[int], body: bytes, ending: str) -> ASGIApp:
    """An app that sends ``body`` forever and never listens for ``http.disconnect``. On the
    send error it re-raises (``raise``), returns (``swallow``), or raises another error from
    it (``wrap``: Starlette turns the OSError into ClientDisconnect, anyio puts that in a
    group)."""

    class ClientDisconnect(Exception):
        pass

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"99999999999")]})
        try:
            while True:
                sent.append(len(body))
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except OSError as exc:
            if ending == "swallow":
                assert isinstance(exc, ResponseClosed)
                assert await receive() == {"type": "http.disconnect"}
                return
            if ending == "wrap":
                group = ExceptionGroup if sys.version_info >= (3, 11) else None  # noqa: F821
                if group is not None:
                    raise group("in a task group", [ClientDisconnect()]) from exc
                raise ClientDisconnect() from exc
            raise

    return app


@pytest.mark.parametrize(("body", "most"), [
    (b"", DROP_MESSAGES),  # empty messages: their count stops the app
    (b"x" * (1 << 16), DROP_BYTES // (1 << 16)),  # 64 KiB ones: their bytes stop it
], ids=["empty", "64KiB"])
@pytest.mark.parametrize("ending", ["raise", "swallow", "wrap"])
def test_app_that_keeps_sending_is_stopped_within_the_caps(body: bytes, most: int,
                                                           ending: str) -> None:
    sent: list[int] = []
    app = RangeMiddleware(endless_app(sent, body or b"", ending))
    result = serve(app, "GET", {"Range": "bytes=0-0"} if body else {"Range": "bytes=-0"})
    assert result.error is None and result.complete
    if body:
        assert result.status == 206 and result.body == b"x"
    else:
        assert result.status == 416
    # The first message made the answer; then at most ``most`` were dropped, and the next
    # one raised.
    assert len(sent) <= 1 + most + 1


def test_server_send_error_is_raised_again_to_the_app() -> None:
    # A server that raises when its client has gone (spec 2.4): the app's next sends raise
    # too, as the server's would; nothing is dropped silently after that.
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10000")]})
        for _ in range(3):
            try:
                await send({"type": "http.response.body", "body": b"y" * 1000,
                            "more_body": True})
            except OSError as exc:
                errors.append(exc)

    result = serve(RangeMiddleware(app), "GET", {"Range": "bytes=0-2999"}, gone_after=1500)
    assert result.error is None and result.body == b"y" * 2000
    assert [type(e) for e in errors] == [ClientGone, ResponseClosed]


def listening_app(log: list[str], body: bytes, chunk: int) -> ASGIApp:
    """An app built as Django's ASGI handler is: one task sends the response (a stream that
    yields between chunks) while another waits on ``receive`` for ``http.disconnect`` and
    then cancels the sender. Its cleanup (Django: the response's ``close()``, which closes a
    ``FileResponse``'s file and sends ``request_finished``) runs when the sender finished or
    was cancelled; an error from ``send`` propagates first and the cleanup is skipped."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.request"

        async def listen() -> None:
            assert (await receive())["type"] == "http.disconnect"

        async def produce() -> None:
            try:
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", str(len(body)).encode()),
                                        (b"etag", b'"e1"')]})
                for start in range(0, len(body), chunk):
                    log.append("sent")
                    await send({"type": "http.response.body",
                                "body": body[start:start + chunk], "more_body": True})
                    await asyncio.sleep(0)
                await send({"type": "http.response.body", "body": b""})
            except asyncio.CancelledError:
                log.append("cancelled")

        tasks = [asyncio.ensure_future(listen()), asyncio.ensure_future(produce())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                task.result()  # an error from send goes up: no cleanup
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        log.append("cleaned up")

    return app


@pytest.mark.parametrize(("method", "headers", "gone_after", "status"), [
    ("GET", {"Range": "bytes=0-9"}, None, 206),
    ("GET", {"Range": "bytes=0-0,5-9"}, None, 206),
    ("GET", {"Range": "bytes=99999-"}, None, 416),
    ("GET", {"If-None-Match": '"e1"'}, None, 304),
    ("HEAD", {}, None, 200),
    ("GET", {"Range": "bytes=1-"}, 5000, 206),  # the client goes, the server does not raise
], ids=["range", "ranges", "unsatisfiable", "not-modified", "head", "client-gone"])
def test_app_that_listens_is_stopped_by_the_disconnect_and_cleans_up(
        method: str, headers: dict[str, str], gone_after: int | None, status: int) -> None:
    # The answer is complete (or the client gone) before the app has sent its whole body:
    # the app learns it on receive and stops itself, as after a client's disconnect on
    # uvicorn or daphne, and its cleanup runs; no send raises.
    log: list[str] = []
    body = bytes(range(256)) * 256  # 64 KiB in 64 chunks
    app = RangeMiddleware(listening_app(log, body, 1024))
    result = serve(app, method, headers, gone_after=gone_after, raise_on_gone=False)
    assert result.error is None and result.status == status
    assert log[-2:] == ["cancelled", "cleaned up"], log
    assert log.count("sent") < 64  # stopped by its listener, not run to the end
    if status == 206 and gone_after is None:
        assert result.complete and result.body.startswith(b"--") == ("," in headers["Range"])


def test_other_errors_after_the_response_are_not_swallowed() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"0123456789"})
        raise ValueError("a bug after the response")

    result = serve(RangeMiddleware(app), "GET", {"Range": "bytes=0-1"})
    assert isinstance(result.error, ValueError) and result.body == b"01"


def test_listener_on_receive_is_woken_when_the_range_is_out() -> None:
    # ASGI spec < 2.4 apps (Starlette's StreamingResponse) listen for the disconnect on
    # receive while they stream: once the range is out, that listener returns.
    order: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

        async def stream() -> None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"20000")]})
            for _ in range(20):
                await send({"type": "http.response.body", "body": b"x" * 1000,
                            "more_body": True})
                await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b""})

        task = asyncio.ensure_future(stream())
        message = await receive()
        order.append(message["type"])
        task.cancel()
        with pytest.raises((asyncio.CancelledError, ResponseClosed)):
            await task

    never = asyncio.Event()

    async def main() -> Served:
        served = Served()

        async def receive() -> Message:
            if not order:
                order.append("request")
                return {"type": "http.request", "body": b"", "more_body": False}
            await never.wait()  # a server that says nothing until the client goes
            raise AssertionError

        async def send(message: Message) -> None:
            served.messages.append(message)
            served.body += message.get("body", b"")

        await RangeMiddleware(app)(make_scope("GET", {"Range": "bytes=0-1"}), receive, send)
        await asyncio.sleep(0)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        return served

    served = asyncio.run(main())
    assert served.body == b"xx" and order == ["request", "http.disconnect"]


def test_request_body_is_delivered_after_the_listener_started(data_path: Path,
                                                              opened: list[io.FileIO]) -> None:
    # The middleware listens for the disconnect while it streams a file; an app that reads
    # its (empty) request only afterwards still gets it first.
    got: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(DATA)).encode())]})
        await send({"type": "http.response.pathsend", "path": str(data_path)})
        got.append(await receive())
        got.append(await receive())

    result = serve(RangeMiddleware(app), "GET", {"Range": "bytes=0-9"})
    assert result.body == DATA[:10]
    assert [m["type"] for m in got] == ["http.request", "http.disconnect"]


def test_started_without_a_body_is_passed_on() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10")]})

    result = serve(RangeMiddleware(app), "GET", {"Range": "bytes=0-1"})
    assert result.status == 200 and result.body == b"" and not result.complete


def test_options_are_checked_and_predicate_gets_the_scope() -> None:
    with pytest.raises(TypeError):
        RangeMiddleware(make_app("bytes", DATA), max_ranges="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RangeMiddleware(make_app("bytes", DATA), block_size=0)
    with pytest.raises(TypeError):
        RangeMiddleware(None)  # type: ignore[arg-type]
    seen: list[Any] = []

    def predicate(scope: Any, headers: list[tuple[str, str]], length: int) -> bool:
        seen.append((scope["path"], length))
        return False

    result = serve(RangeMiddleware(make_app("bytes", DATA), predicate=predicate), "GET",
                   {"Range": "bytes=0-1"})
    assert result.status == 200 and result.body == DATA
    assert result.header("accept-ranges") is None
    assert seen == [("/", len(DATA))]


def test_predicate_error_closes_the_pathsend_file(data_path: Path,
                                                  opened: list[io.FileIO]) -> None:
    def predicate(scope: Any, headers: list[tuple[str, str]], length: int) -> bool:
        raise LookupError("a bug in the predicate")

    app = RangeMiddleware(make_app("pathsend", DATA, path=data_path), predicate=predicate)
    result = serve(app, "GET", {"Range": "bytes=0-1"})
    assert isinstance(result.error, LookupError) and result.status == 0
    assert len(opened) == 1  # and closed: the fixture checks


def starlette_app(background: list[str]) -> Any:
    require_module("starlette", "starlette")
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import FileResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def stream(request: Any) -> Any:
        async def chunks() -> Any:
            for piece in chunked(DATA, (1000,)):
                yield piece

        return StreamingResponse(chunks(), headers={"content-length": str(len(DATA)),
                                                    "etag": '"s1"'})

    async def whole(request: Any) -> Any:
        return Response(DATA, headers={"etag": '"s1"'},
                        background=BackgroundTask(background.append, "ran"))

    async def file(request: Any) -> Any:
        return FileResponse(request.app.state.path)

    app = Starlette(routes=[Route("/stream", stream), Route("/bytes", whole),
                            Route("/file", file)])
    app.add_middleware(RangeMiddleware)
    return app


@pytest.mark.parametrize("spec", ["2.3", "2.4"])
def test_starlette_in_process(spec: str, data_path: Path, opened: list[io.FileIO]) -> None:
    # Below spec 2.4 Starlette listens for the disconnect on receive; from 2.4 on it turns
    # the OSError from send into ClientDisconnect. Either way: a clean end, the right bytes.
    background: list[str] = []
    app = starlette_app(background)
    app.state.path = data_path

    def get(path: str, headers: dict[str, str], method: str = "GET") -> Served:
        scope = make_scope(method, headers, spec=spec)
        scope["path"] = scope["raw_path"] = path
        scope["raw_path"] = path.encode()
        return serve(app, scope=scope, method=method)

    result = get("/stream", {"Range": "bytes=100-1099"})
    assert result.error is None and result.status == 206 and result.body == DATA[100:1100]
    result = get("/bytes", {"Range": "bytes=-5"})
    assert result.error is None and result.status == 206 and result.body == DATA[-5:]
    assert background == ["ran"]  # one body message: never interrupted
    result = get("/file", {"Range": "bytes=0-1"})  # FileResponse answers Range itself
    assert result.status == 206 and result.body == DATA[:2]
    result = get("/file", {"Range": "bytes=0-1"}, "HEAD")  # not on HEAD: Range is hidden
    assert result.status == 200 and result.body == b""
    assert result.header("content-length") == str(len(DATA))
    etag = get("/file", {}).header("etag")
    assert etag is not None
    result = get("/file", {"If-None-Match": etag})  # the 304 FileResponse does not make
    assert result.status == 304 and result.body == b"" and result.error is None


@pytest.mark.parametrize(("given", "seen"), [
    ("2.4", "2.3"), ("2.5", "2.3"), ("3.0", "2.3"), ("2.3", "2.3"), ("2.1", "2.1"),
    ("2.0", "2.0"), ("two", "two"), (None, None),
])
def test_app_is_told_the_spec_version_whose_rules_the_middleware_keeps(
        given: str | None, seen: str | None) -> None:
    # After its answer the middleware drops what the app sends and says http.disconnect
    # (the rules up to spec 2.3); it does not raise from send as a 2.4 server does, so an app
    # is never told more than 2.3. The server's own scope is not changed.
    told: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        told.append(scope.get("asgi", {}).get("spec_version"))
        await make_app("bytes", DATA)(scope, receive, send)

    scope = make_scope("GET", {"Range": "bytes=0-1"})
    if given is None:
        del scope["asgi"]
    else:
        scope["asgi"]["spec_version"] = given
    result = serve(RangeMiddleware(app), scope=scope)
    assert result.status == 206 and result.body == DATA[:2]
    assert told == [seen]
    assert scope.get("asgi", {}).get("spec_version") == given


def starlette_endless(produced: list[int], ran: list[str]) -> Any:
    """A Starlette StreamingResponse that never ends and never looks at receive itself, with
    a background task."""
    require_module("starlette", "starlette")
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def stream(request: Any) -> Any:
        async def endless() -> Any:
            while True:
                produced.append(1000)
                yield b"e" * 1000

        return StreamingResponse(endless(), headers={"content-length": "99999999999",
                                                     "etag": '"s1"'},
                                 background=BackgroundTask(ran.append, "ran"))

    return RangeMiddleware(Starlette(routes=[Route("/", stream)]))


@pytest.mark.parametrize("spec", ["2.1", "2.3", "2.4"])
@pytest.mark.parametrize(("method", "headers", "status"), [
    ("GET", {"Range": "bytes=0-9"}, 206), ("GET", {"Range": "bytes=0-0,5-9"}, 206),
    ("GET", {"Range": "bytes=99999999999-"}, 416), ("GET", {"If-None-Match": '"s1"'}, 304),
    ("HEAD", {}, 200),
], ids=["range", "ranges", "unsatisfiable", "not-modified", "head"])
def test_starlette_background_runs_after_an_early_answer(
        spec: str, method: str, headers: dict[str, str], status: int) -> None:
    # Whatever spec the server announces, Starlette listens for http.disconnect (it is told
    # 2.3), so the middleware's answer stops an endless stream within the caps without an
    # exception, and the background task runs (as after a client's disconnect on uvicorn).
    produced: list[int] = []
    ran: list[str] = []
    result = serve(starlette_endless(produced, ran), method, headers, spec=spec)
    assert result.error is None and result.status == status and result.complete
    if "," in headers.get("Range", ""):
        parts = parse_multipart(result.body, result.header("content-type") or "")
        assert [body for _, body in parts] == [b"e", b"e" * 5]
    elif status == 206:
        assert result.body == b"e" * 10
    elif status == 416:
        assert result.header("content-range") == "bytes */99999999999"
    else:
        assert result.body == b""
    assert ran == ["ran"]
    assert len(produced) <= DROP_MESSAGES + 2


def late_request_server(app: ASGIApp, headers: dict[str, str], turns: int | None) -> Served:
    """Run ``app`` under a server whose first receive returns after ``turns`` turns of the
    event loop (a server that answers from a thread of its own, as Granian does), or never
    (``None``: a request body that does not come)."""
    served = Served()

    async def main() -> None:
        done = asyncio.Event()
        asked = 0

        async def receive() -> Message:
            nonlocal asked
            asked += 1
            if asked == 1 and turns is not None:
                for _ in range(turns):
                    await asyncio.sleep(0)
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            served.messages.append(message)
            if message["type"] == "http.response.start":
                served.status = message["status"]
                return
            served.body += message.get("body", b"")
            if not message.get("more_body", False):
                served.complete = True
                done.set()

        try:
            await RangeMiddleware(app)(make_scope("GET", headers, spec="2.3"), receive, send)
        except Exception as exc:
            served.error = exc
        # A stream stopped half way is closed by the loop's finaliser, in a task of its own,
        # when the collector frees it: freed now, and that task run, before the count.
        gc.collect()
        for _ in range(3):
            await asyncio.sleep(0)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())
    return served


def test_listener_whose_request_comes_late_still_hears_the_end() -> None:
    # Starlette starts its stream and its listener at once; the listener's first receive is
    # still in the server when the range is out. Dropped sends wait for it, so the listener
    # hears http.disconnect and stops the stream before the caps: the background task runs.
    require_module("starlette", "starlette")
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    ran: list[str] = []
    produced: list[int] = []

    async def stream(request: Any) -> Any:
        async def blocks() -> Any:
            for _ in range(1000):
                produced.append(100)
                yield b"b" * 100

        return StreamingResponse(blocks(), headers={"content-length": "100000"},
                                 background=BackgroundTask(ran.append, "ran"))

    app = Starlette(routes=[Route("/", stream)])
    result = late_request_server(app, {"Range": "bytes=0-9"}, turns=10 * DROP_MESSAGES)
    assert result.error is None and result.status == 206 and result.body == b"b" * 10
    assert ran == ["ran"]
    assert len(produced) < 1000


def test_wait_for_a_receive_that_never_returns_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A request whose body never comes: the app's receive stays in the server. Dropped sends
    # wait for it only DROP_WAIT seconds in all; then the caps stop an app that keeps sending.
    monkeypatch.setattr(rangewsgi.asgi, "DROP_WAIT", 0.01)
    sent: list[int] = []
    inner = endless_app(sent, b"x" * 10, "raise")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        listener = asyncio.ensure_future(receive())
        try:
            await inner(scope, receive, send)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    result = late_request_server(app, {"Range": "bytes=0-0"}, turns=None)
    assert result.error is None and result.status == 206 and result.body == b"x"
    assert len(sent) <= 1 + DROP_MESSAGES + 1


def test_one_warning_per_route_for_media_without_a_length(
        caplog: pytest.LogCaptureFixture) -> None:
    # A video the middleware cannot range for want of a length: one WARNING per route,
    # saying how to give it one; the route is the full path (root_path included once).
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"video/mp4")]})
        await send({"type": "http.response.body", "body": b"0123456789"})

    middleware = RangeMiddleware(app)

    def get(path: str, root_path: str) -> Served:
        scope = make_scope("GET", {"Range": "bytes=0-1"})
        scope.update(path=path, raw_path=path.encode(), root_path=root_path)
        return serve(middleware, scope=scope)

    caplog.set_level("WARNING", logger="rangewsgi")
    for _ in range(3):
        result = get("/app/video", "/app")  # the path holds the prefix (spec 2.x)
        assert result.status == 200 and result.body == b"0123456789"
        result = get("/movie", "/app")  # a server that leaves the prefix out
        assert result.status == 200
        get("/other", "")
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(messages) == 3, messages
    assert "route '/app/video'" in messages[0] and "http.response.pathsend" in messages[0]
    assert "route '/app/movie'" in messages[1] and "route '/other'" in messages[2]


def test_memory_stays_flat_for_a_large_stream() -> None:
    import tracemalloc

    size = 64 << 20
    block = b"z" * (1 << 16)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        for _ in range(size // len(block)):
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    sizes: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sizes.append(len(message.get("body", b"")))

    gc.collect()
    tracemalloc.start()
    try:
        asyncio.run(RangeMiddleware(app)(
            make_scope("GET", {"Range": f"bytes=1-{size - 2}"}), receive, send))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(sizes) == size - 2
    assert peak < 4 << 20, peak


# -- the same answers as the WSGI adapter --

CASES: dict[str, tuple[str, dict[str, str]]] = {
    "plain": ("GET", {}),
    "single": ("GET", {"Range": "bytes=100-199"}),
    "open-ended": ("GET", {"Range": "bytes=16000-"}),
    "suffix": ("GET", {"Range": "bytes=-777"}),
    "multi": ("GET", {"Range": "bytes=0-9, 7000-8000,-5"}),
    "multi-unordered": ("GET", {"Range": "bytes=9000-9009,0-4"}),
    "overlapping": ("GET", {"Range": "bytes=0-99,50-149"}),
    "unsatisfiable": ("GET", {"Range": "bytes=20000-"}),
    "invalid": ("GET", {"Range": "bytes=5-4"}),
    "other-unit": ("GET", {"Range": "items=0-1"}),
    "too-many": ("GET", {"Range": ",".join(f"{i * 10}-{i * 10}" for i in range(150))}),
    "if-range-etag": ("GET", {"Range": "bytes=0-9", "If-Range": '"v1"'}),
    "if-range-stale": ("GET", {"Range": "bytes=0-9", "If-Range": '"v0"'}),
    "if-range-date": ("GET", {"Range": "bytes=0-9", "If-Range": LM}),
    "if-none-match": ("GET", {"If-None-Match": '"v1"'}),
    "if-none-match-range": ("GET", {"If-None-Match": '"v1"', "Range": "bytes=0-9"}),
    "if-match-fails": ("GET", {"If-Match": '"v0"', "Range": "bytes=0-9"}),
    "if-modified-since": ("GET", {"If-Modified-Since": DATE}),
    "if-unmodified-since": ("GET", {"If-Unmodified-Since": "Sat, 21 Nov 2020 10:00:00 GMT"}),
    "head": ("HEAD", {"Range": "bytes=0-9"}),
    "head-if-none-match": ("HEAD", {"If-None-Match": '"v1"'}),
}
VALIDATED = [("Content-Type", "application/x-test"), ("ETag", '"v1"'), ("Last-Modified", LM),
             ("Date", DATE)]
# (WSGI body kind, ASGI body kind): a list against one body message, a generator against a
# stream, a file wrapper against a path-send of the same file.
PAIRS = [("list", "bytes"), ("generator", "stream"), ("file", "pathsend"),
         ("file", "pathsend_no_length")]


def _normalised(status: int, headers: list[tuple[str, str]], body: bytes,
                head: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    names = [(k.lower(), v) for k, v in headers]
    match = re.search(r"boundary=(\w+)", dict(names).get("content-type", ""))
    if match is not None:
        token = match.group(1)
        names = [(k, v.replace(token, "BOUNDARY")) for k, v in names]
        body = body.replace(token.encode(), b"BOUNDARY")
    return status, names, b"" if head else body


def _wsgi_app(kind: str, path: Path, headers: list[tuple[str, str]]) -> Any:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if kind == "file":
            start_response("200 OK", list(headers))
            return environ["wsgi.file_wrapper"](open(path, "rb"), 4096)
        start_response("200 OK", [*headers, ("Content-Length", str(len(DATA)))])
        if kind == "list":
            return [DATA]
        return (piece for piece in chunked(DATA, (700,)))

    return app


@pytest.mark.filterwarnings("ignore::wsgiref.validate.WSGIWarning")
@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
@pytest.mark.parametrize("case", list(CASES))
def test_same_answers_as_the_wsgi_adapter(pair: tuple[str, str], case: str, data_path: Path,
                                          opened: list[io.FileIO]) -> None:
    method, request = CASES[case]
    wsgi_kind, asgi_kind = pair
    headers = list(VALIDATED)
    if wsgi_kind == "file":
        headers = [("Content-Type", "application/x-test")]  # validators from the file
    wsgi = wsgi_call(WSGIRangeMiddleware(_wsgi_app(wsgi_kind, data_path, headers)), method,
                     request)
    asgi_headers = [(k.lower(), v) for k, v in headers]
    asgi = serve(RangeMiddleware(make_app(asgi_kind, DATA, headers=asgi_headers,
                                          path=data_path, chunk_sizes=(700,))),
                 method, request)
    assert asgi.error is None
    head = method == "HEAD"
    expected_answer = _normalised(wsgi.code, wsgi.headers, wsgi.body, head)
    actual = _normalised(asgi.status, asgi.headers, asgi.body, head)
    if wsgi_kind == "file":
        # The WSGI app names no Content-Length (the middleware adds it after the file's
        # validators); the ASGI apps name it, or not: the same fields, in another order.
        expected_answer[1].sort()
        actual[1].sort()
    assert actual == expected_answer


# -- the model: every answer equals a slicing model of RFC 9110 --

SEEKABLE_ASGI = {"pathsend": "raw_file", "pathsend_no_length": "raw_file"}


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), kind=st.sampled_from(BODY_KINDS),
       chunk_sizes=st.lists(st.integers(1, 90), min_size=1, max_size=4),
       rng=range_header, if_range=if_range_header,
       etag=st.sampled_from([None, '"v1"', 'W/"v1"']), method=st.sampled_from(["GET", "HEAD"]),
       max_ranges=st.sampled_from([2, 5, 100]))
def test_every_answer_matches_the_model(tmp_path: Path, data: bytes, kind: str,
                                        chunk_sizes: list[int], rng: str | None,
                                        if_range: str | None, etag: str | None, method: str,
                                        max_ranges: int) -> None:
    headers = [("content-type", "application/x-test"), ("last-modified", LM), ("date", DATE)]
    if etag is not None:
        headers.append(("etag", etag))
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    tracker = Tracker()
    app = RangeMiddleware(make_app(kind, data, headers=headers, chunk_sizes=tuple(chunk_sizes),
                                   tracker=tracker, path=path), max_ranges=max_ranges)
    request, shape, ranges = model_request(method, rng, if_range, etag, len(data), max_ranges)
    served = serve(app, method, request)
    assert served.error is None and served.complete
    check(served.result(), shape, ranges, data, SEEKABLE_ASGI.get(kind, kind), method)
    assert tracker.ended == 1


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=300), kind=st.sampled_from(BODY_KINDS),
       rng=st.sampled_from([None, "bytes=0-9", "bytes=-5", "bytes=5-,0-1", "bytes=9999-"]),
       if_range=st.sampled_from([None, '"v1"', LM]),
       etag=st.sampled_from([None, '"v1"', 'W/"v1"']), method=st.sampled_from(["GET", "HEAD"]),
       if_match=st.sampled_from(TAG_FIELDS), if_none_match=st.sampled_from(TAG_FIELDS),
       ims=st.sampled_from([None, *DATES]), ius=st.sampled_from([None, *DATES]))
def test_preconditions_then_ranges_match_the_model(
        tmp_path: Path, data: bytes, kind: str, rng: str | None, if_range: str | None,
        etag: str | None, method: str, if_match: str | None, if_none_match: str | None,
        ims: str | None, ius: str | None) -> None:
    """RFC 9110 13.2.2 through the ASGI adapter, against the same independent model as the
    WSGI one (tests/test_model.py)."""
    headers = [("content-type", "application/x-test"), ("last-modified", LM), ("date", DATE)]
    if etag is not None:
        headers.append(("etag", etag))
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    tracker = Tracker()
    app = RangeMiddleware(make_app(kind, data, headers=headers, tracker=tracker, path=path))
    fields = {name: value for name, value in [
        ("If-Match", if_match), ("If-None-Match", if_none_match), ("If-Modified-Since", ims),
        ("If-Unmodified-Since", ius), ("Range", rng), ("If-Range", if_range)]
        if value is not None}
    served = serve(app, method, fields)
    assert served.error is None and served.complete
    result = served.result()
    outcome = model_preconditions(fields, etag)
    if outcome == "412":
        assert result.status == "412 Precondition Failed"
        assert result.body == (b"412 Precondition Failed\n" if method == "GET" else b"")
    elif outcome == "304":
        assert result.status == "304 Not Modified" and result.body == b""
        assert result.header("ETag") == etag and result.header("Content-Type") is None
    else:
        _, shape, ranges = model_request(method, rng, if_range, etag, len(data), 100)
        check(result, shape, ranges, data, SEEKABLE_ASGI.get(kind, kind), method)
    assert tracker.ended == 1
