"""Ranged sources served as ASGI responses (``SourceResponse``), in process and by servers.

- ``Counting``: a source over bytes that records its ``read_range`` calls, its iterations,
  its ``close()`` calls, the bytes and the largest chunk it yielded, and whether any read
  ran on the event loop's thread; with a ``gate`` (a ``threading.Event``), each read blocks
  until the gate opens, like a slow upstream.
- ``Pattern``: a source of any size (1 GiB) from one repeated block, nothing held.
- ``build(framework, make, ranged)``: an app answering ``GET``/``HEAD /file`` with
  ``SourceResponse(make())``: a raw ASGI app, Starlette, FastAPI (the response returned),
  Litestar (the route annotated with the response class, which Litestar calls as an ASGI
  app), optionally inside ``rangewsgi.asgi.RangeMiddleware``.
- ``call(app, ...)``: one request in process, like a server: ``http.request`` first, then
  ``http.disconnect`` once the response is complete (or after ``disconnect_after`` body
  messages, for a client that goes away).
- ``app``: what ``uvicorn source_apps:app`` serves: ``/<framework>/file`` and
  ``/alone/<framework>/file`` (no middleware) over ``DATA``; ``/slow/file``, whose reads
  block until ``/open`` opens the gate; ``/big/file`` (``BIG`` bytes of ``Pattern``, no
  middleware); ``/_waiting``: how many reads wait at the gate now; ``/open``; and ``/_log``:
  the sources made since the last ``/_log`` (their calls and closes), as JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rangewsgi.asgi import SourceResponse

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

SIZE = 300_007
DATA = random.Random(19).randbytes(SIZE)
ETAG = '"source-v1"'
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"
BLOCK = 16 * 1024
GATE_TIMEOUT = 60.0
BIG = 1024**3
FRAMEWORKS = ["raw", "starlette", "fastapi", "litestar"]


class Counting:
    """A ranged source over ``data`` that records what is asked of it."""

    def __init__(self, data: bytes = DATA, etag: str | None = ETAG,
                 last_modified: str | None = LAST_MODIFIED,
                 gate: threading.Event | None = None, block: int = BLOCK,
                 content_type: str | None = "video/mp4") -> None:
        self.data, self.size, self.gate, self.block = data, len(data), gate, block
        self.etag, self.last_modified, self.content_type = etag, last_modified, content_type
        self.calls: list[tuple[int, int]] = []
        self.iterations = 0
        self.closes = 0
        self.largest = 0
        self.read_bytes = 0
        self.on_loop = False  # a read ran on a thread with a running event loop
        self.waiting = 0  # reads blocked at the gate now

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        self.calls.append((start, stop))
        return self._chunks(start, stop)

    def __iter__(self) -> Iterator[bytes]:
        self.iterations += 1
        return self._chunks(0, self.size)

    def _chunks(self, start: int, stop: int) -> Iterator[bytes]:
        for at in range(start, stop, self.block):
            self._note_thread()
            if self.gate is not None:
                self._wait_for_gate(self.gate)
            chunk = self.data[at:min(stop, at + self.block)]
            self.largest = max(self.largest, len(chunk))
            self.read_bytes += len(chunk)
            yield chunk

    def _wait_for_gate(self, gate: threading.Event) -> None:
        self.waiting += 1
        try:
            if not gate.wait(GATE_TIMEOUT):
                raise TimeoutError("the gate was never opened")
        finally:
            self.waiting -= 1

    def _note_thread(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.on_loop = True

    def close(self) -> None:
        self.closes += 1

    def report(self) -> dict[str, Any]:
        return {"calls": self.calls, "iterations": self.iterations, "closes": self.closes,
                "largest": self.largest, "on_loop": self.on_loop}


class Pattern:
    """``size`` bytes of one repeated random block: any size, nothing held but the block."""

    def __init__(self, size: int, block: int = 64 * 1024) -> None:
        self.size = size
        self.block = random.Random(size).randbytes(block)
        self.etag = f'"pattern-{size}"'
        self.closes = 0

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        width = len(self.block)
        at = start
        while at < stop:
            offset = at % width
            chunk = self.block[offset:min(width, offset + stop - at)]
            at += len(chunk)
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        return self.read_range(0, self.size)

    def close(self) -> None:
        self.closes += 1

    def expected(self, start: int, stop: int) -> bytes:
        return b"".join(self.read_range(start, stop))


def _raw(make: Callable[[], Any]) -> ASGIApp:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await SourceResponse(make(), headers={"x-app": "raw"})(scope, receive, send)
    return app


def _starlette(make: Callable[[], Any]) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    async def endpoint(request: Request) -> SourceResponse:
        return SourceResponse(make(), headers={"x-app": "starlette"})

    return Starlette(routes=[Route("/file", endpoint, methods=["GET", "HEAD"])])


def _fastapi(make: Callable[[], Any]) -> ASGIApp:
    from fastapi import FastAPI

    api = FastAPI()

    @api.api_route("/file", methods=["GET", "HEAD"])
    async def endpoint() -> SourceResponse:
        return SourceResponse(make(), headers={"x-app": "fastapi"})

    return api


def _litestar(make: Callable[[], Any]) -> ASGIApp:
    from litestar import HttpMethod, Litestar, route

    # Annotated with the response class: an async callable, which Litestar calls as an ASGI
    # app (its "generic ASGI response" handler) instead of serialising it.
    @route("/file", http_method=[HttpMethod.GET, HttpMethod.HEAD])
    async def endpoint() -> SourceResponse:
        return SourceResponse(make(), headers={"x-app": "litestar"})

    return Litestar(route_handlers=[endpoint],
                    signature_namespace={"SourceResponse": SourceResponse})


BUILDERS: dict[str, Callable[[Callable[[], Any]], ASGIApp]] = {
    "raw": _raw, "starlette": _starlette, "fastapi": _fastapi, "litestar": _litestar}


def build(framework: str, make: Callable[[], Any], ranged: bool = True) -> ASGIApp:
    """``framework``'s app serving ``/file``; inside ``RangeMiddleware`` when ``ranged``."""
    inner = BUILDERS[framework](make)
    if not ranged:
        return inner
    from rangewsgi.asgi import RangeMiddleware

    return RangeMiddleware(inner)


# -- in process --


@dataclass
class Answer:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    messages: list[Message] = field(default_factory=list)
    complete: bool = False

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None


def scope_for(method: str = "GET", headers: Mapping[str, str] | None = None,
              path: str = "/file") -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": path,
            "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in (headers or {}).items()],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "extensions": {}}


async def call_async(app: ASGIApp, method: str = "GET",
                     headers: Mapping[str, str] | None = None,
                     disconnect_after: int | None = None, path: str = "/file") -> Answer:
    """One request, the way a spec 2.3 server runs it (sends after a disconnect dropped)."""
    answer = Answer()
    gone = asyncio.Event()
    asked = False

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if gone.is_set():
            return  # uvicorn drops what is sent to a client that has gone
        answer.messages.append(message)
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                              for k, v in message.get("headers") or ()]
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")
            if not message.get("more_body", False):
                answer.complete = True
                gone.set()
            bodies = sum(m["type"] == "http.response.body" for m in answer.messages)
            if disconnect_after is not None and bodies >= disconnect_after:
                gone.set()
                await asyncio.sleep(0)  # the app's listener hears it

    await app(scope_for(method, headers, path), receive, send)
    return answer


def call(app: ASGIApp, method: str = "GET", headers: Mapping[str, str] | None = None,
         disconnect_after: int | None = None) -> Answer:
    return asyncio.run(call_async(app, method, headers, disconnect_after))


# -- what the servers load --


class _Served:
    """The app ``uvicorn source_apps:app`` serves (see the module docstring)."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, Counting]] = []
        self.lock = threading.Lock()
        self.apps: dict[str, ASGIApp] = {}
        self.gate = threading.Event()

    def _counting(self, label: str, gate: threading.Event | None = None
                  ) -> Callable[[], Any]:
        def make() -> Counting:
            source = Counting(gate=gate)
            with self.lock:
                self.sources.append((label, source))
            return source
        return make

    def _app(self, prefix: str) -> ASGIApp:
        if prefix not in self.apps:
            head, _, framework = prefix.partition("/")
            if head == "alone":
                self.apps[prefix] = build(framework, self._counting(prefix), ranged=False)
            elif head == "slow":
                self.apps[prefix] = build("raw", self._counting(prefix, self.gate))
            elif head == "big":
                self.apps[prefix] = build("raw", lambda: Pattern(BIG), ranged=False)
            else:
                self.apps[prefix] = build(head, self._counting(prefix))
        return self.apps[prefix]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if path in ("/_log", "/_waiting", "/open"):
            await _json(send, self._report(path))
            return
        prefix, _, name = path.rpartition("/")
        inner = {**scope, "path": f"/{name}", "raw_path": f"/{name}".encode()}
        await self._app(prefix.strip("/"))(inner, receive, send)

    def _report(self, path: str) -> Any:
        if path == "/open":
            self.gate.set()
        if path == "/_waiting":
            with self.lock:
                return sum(source.waiting for _, source in self.sources)
        return self._take() if path == "/_log" else "opened"

    def _take(self) -> list[dict[str, Any]]:
        with self.lock:
            taken, self.sources = self.sources, []
        return [{"label": label, **source.report()} for label, source in taken]


async def _json(send: Send, value: Any) -> None:
    body = json.dumps(value).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


app = _Served()
