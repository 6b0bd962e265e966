"""The ASGI adapter: hold ``http.response.start`` until the decision, then shape the body.

Protocol glue only: the decision is the shared core's (``decision.decide_response``), the
bytes come from ``bodies`` through ``asgi_bodies``. Section names below are those of the ASGI
"HTTP & WebSocket" message format and of its extensions document.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .asgi_bodies import (
    Message,
    SlicedBody,
    answer_file,
    close_file,
    open_file,
    send_pieces,
)
from .decision import Decision, LengthWarnings, Options, decide_response, needs_body
from .files import FoundFile
from .plan import (
    LENGTH_UNKNOWN,
    WRITTEN_HERE,
    Headers,
    Kind,
    Plan,
    Request,
    ResponseFacts,
    fixed_body,
    read_headers,
)

__all__ = ["Predicate", "RangeMiddleware", "ResponseClosed"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Predicate = Callable[[Scope, Headers, int], bool]
"""``predicate(scope, headers, length) -> bool``: False leaves a 200 untouched."""

PATHSEND = "http.response.pathsend"
# How an ASGI app gives the middleware a length (see ``LengthWarnings``).
_LENGTH_FIX = ("give the response a Content-Length, or send the file with "
               "http.response.pathsend (Starlette FileResponse)")
# Request fields the decision reads: their place in ``Request`` after the method.
_REQUEST_FIELDS = {b"range": 0, b"if-range": 1, b"if-match": 2, b"if-none-match": 3,
                   b"if-modified-since": 4, b"if-unmodified-since": 5}


# What an app may still send after the middleware has ended its response (the answer is
# complete, or the server said http.disconnect): dropped, up to these caps, after which its
# send raises ResponseClosed.
DROP_BYTES = 1 << 20
DROP_MESSAGES = 64
# While the app's own receive is still inside the server's, dropped sends wait for it, for at
# most this many seconds in all (``_await_receive``).
DROP_WAIT = 1.0
# The ASGI spec version whose send and receive rules the middleware keeps (``_drop``): after
# the answer, sends return and receive says http.disconnect. From 2.4 a server's send raises
# once the connection is closed ("Disconnected Client - send exception"), and apps that rely
# on that stop listening on receive (Starlette's StreamingResponse streams on until send
# raises, and then skips its background task). A server that announces more is announced to
# the app as this.
SPEC_VERSION = "2.3"


class ResponseClosed(OSError):
    """Raised by ``send`` once the response has ended and the app keeps sending past the drop
    caps, or after the server's own ``send`` failed; swallowed when it comes back out."""

    # "Disconnected Client - send exception": the app stops as when a server's client has
    # gone; when the exception comes back out of the app, the middleware swallows it.


class RangeMiddleware:
    """Answer byte-range and conditional requests (RFC 9110 sections 13 and 14) for any
    ASGI 3 application.

    The same decisions as the WSGI ``rangewsgi.RangeMiddleware``. Every ``GET`` whose inner
    response is a ``200`` with a known length (a ``content-length``, or a file sent with
    ``http.response.pathsend``, which the middleware offers) gets ``206``,
    ``multipart/byteranges`` or ``416``, after the preconditions of 13.2.2 (``412``,
    ``304``); every such ``200`` (and its ``HEAD``) carries ``accept-ranges: bytes``. A
    ``200`` of ranged media whose length is unknown passes through, with one ``WARNING`` per
    route on the ``rangewsgi`` logger. A ``HEAD`` the middleware does not answer itself goes
    to the server as the app gave it, body included. Only ``http`` scopes with method
    ``GET`` or ``HEAD`` are touched. Once the middleware has completed an answer, the app's
    further sends are dropped and ``receive`` says ``http.disconnect`` (the app is told ASGI
    spec 2.3 at most); past ``DROP_MESSAGES`` messages or ``DROP_BYTES`` bytes, ``send``
    raises ``ResponseClosed``.

    Options:
        max_ranges: more range-specs than this and the Range header is ignored (200).
        max_multipart_excess: a multipart answer more than this many bytes larger than the
            whole representation is not sent; the Range header is ignored (200) instead.
        predicate: ``predicate(scope, headers, length)``; when it returns False the 200
            passes through untouched (no ranges, no Accept-Ranges, no 304/412).
        block_size: read size for a file the app sends with ``http.response.pathsend``.
        conditional: evaluate If-Match, If-Unmodified-Since, If-None-Match and
            If-Modified-Since (RFC 9110 13.2.2) for GET and HEAD: ``412`` and ``304``.
        file_validators: give a path-send file without ``ETag`` and ``Last-Modified`` a
            strong ``ETag`` (size and modification time) and a ``Last-Modified``.
    """

    def __init__(self, app: ASGIApp, *, max_ranges: int = 100,
                 max_multipart_excess: int = 4096, predicate: Predicate | None = None,
                 block_size: int = 64 * 1024, conditional: bool = True,
                 file_validators: bool = True) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application (a callable), not {app!r}")
        self.app = app
        self.options = Options(max_ranges, max_multipart_excess, predicate,
                               block_size=block_size, conditional=conditional,
                               file_validators=file_validators)
        self.length_warnings = LengthWarnings(_LENGTH_FIX)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            # RFC 9110 14.2: Range is defined for GET only; preconditions cannot be evaluated
            # after an unsafe method has run (13.2.1). websocket and lifespan are not ours.
            await self.app(scope, receive, send)
            return
        await _Exchange(self, scope, receive, send).run()


def _request(scope: Scope) -> tuple[Request, bool]:
    """The request fields the decision reads, and whether the request carries a body."""
    fields: list[str | None] = [None] * 6
    bodiless = scope.get("http_version") in ("1.0", "1.1")
    for name, value in scope.get("headers") or ():
        name = bytes(name).lower()
        key = _REQUEST_FIELDS.get(name)
        if key is not None:
            # RFC 9110 5.3: repeated field lines combine into one comma-separated list.
            text = bytes(value).decode("latin-1")
            seen = fields[key]
            fields[key] = text if seen is None else f"{seen}, {text}"
        elif name == b"transfer-encoding" or (name == b"content-length"
                                               and bytes(value).strip() != b"0"):
            bodiless = False
    method = scope["method"]
    if method != "GET":
        fields[0] = None  # 14.2: only GET is ranged
    return Request(method, *fields), bodiless


def _route(scope: Scope) -> tuple[str, str]:
    """The route a warning names: (prefix, path), the path whole when it holds the prefix."""
    # "HTTP Connection Scope": path is the full path (root_path included) since spec 2.x
    # servers and routers added it; older ones gave it without.
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return ("", path) if path.startswith(root) else (root, path)


def _newer(version: object, than: str) -> bool:
    """Whether the spec version ``version`` ("2.4") is later than ``than``."""
    try:
        given = tuple(int(part) for part in str(version).split("."))
    except ValueError:
        return False  # not a version: left as the server gave it
    return given > tuple(int(part) for part in than.split("."))


def _encode(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Header fields for "Response Start": names lowercased, values as the app gave them."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers]


def _from_us(exc: BaseException, ours: BaseException | None) -> bool:
    """Whether ``exc`` comes from ``ResponseClosed`` or ``ours`` (cause, context, group)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ResponseClosed) or current is ours:
            return True
        group = getattr(current, "exceptions", None)
        if (isinstance(group, tuple) and group
                and all(_from_us(inner, ours) for inner in group)):
            return True
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return False


class _Exchange:
    """One GET or HEAD through the middleware."""

    # State that most responses never change starts as a class attribute: making one
    # exchange per request then costs only what each request sets.
    start: Message | None = None
    status = ""
    headers: Headers = []  # noqa: RUF012 - replaced, never mutated
    facts: ResponseFacts | None = None
    plan: Plan | None = None
    sliced: SlicedBody | None = None
    ended = False  # the response is complete, or the client has gone
    stopped = False  # the app's further sends are dropped (``_drop``)
    dropped_bytes = 0
    dropped_messages = 0
    gone = False  # the server said http.disconnect
    ended_event: asyncio.Event | None = None
    server_error: OSError | None = None
    body_read = False
    receiving = False  # the app waits in the server's receive
    received: asyncio.Future[None] | None = None  # done when that receive returns
    drop_deadline: float | None = None
    stash: list[Message] | None = None
    watcher: asyncio.Task[None] | None = None

    def __init__(self, mw: RangeMiddleware, scope: Scope, receive: Receive,
                 send: Send) -> None:
        self.app = mw.app
        self.options = mw.options
        self.length_warnings = mw.length_warnings
        self.request, self.bodiless = _request(scope)
        self.head = scope["method"] == "HEAD"
        # A copy: nothing the app is shown leaks back into the server's scope.
        extensions = scope.get("extensions") or {}
        self.server_pathsend = PATHSEND in extensions
        # Extensions, "Path Send": offered, so that the file behind the body is known.
        # Zero copy send cannot carry a slice the middleware chooses: not offered.
        extensions = {**extensions, PATHSEND: {}}
        extensions.pop("http.response.zerocopysend", None)
        self.scope = scope = {**scope, "extensions": extensions}
        asgi = scope.get("asgi")
        if isinstance(asgi, dict) and _newer(asgi.get("spec_version"), SPEC_VERSION):
            scope["asgi"] = {**asgi, "spec_version": SPEC_VERSION}
        headers = scope.get("headers") or ()
        if self.head and (self.request.if_range is not None
                          or any(bytes(n).lower() == b"range" for n, _ in headers)):
            # RFC 9110 14.2: a server "MUST ignore a Range header field received with a
            # request method ... for which range handling is not defined": hidden from apps
            # that would range a HEAD themselves.
            scope["headers"] = [(n, v) for n, v in headers
                                if bytes(n).lower() not in (b"range", b"if-range")]
        self.receive_server = receive
        self.send_server = send

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception as exc:
            if self.ended and _from_us(exc, self.server_error):
                return  # the response is out (or the client gone): a clean end for the server
            raise
        finally:
            if self.watcher is not None and not self.watcher.done():
                self.watcher.cancel()
        if self.start is not None and self.plan is None:
            await self.send_server(self.start)  # started without a body: as the app left it

    # -- send: the messages the app sends --

    async def send(self, message: Message) -> None:
        if self.stopped:
            await self._drop(message)
            return
        kind = message["type"]
        if kind == "http.response.start" and self.start is None:
            start = self._on_start(message)
            if start is not None:
                await self.send_server(start)
        elif self.start is None or self.ended:
            await self.send_server(message)  # early hints, or what follows a completed body
        elif kind == "http.response.body":
            if self.plan is None:
                await self._commit(self._decide(None).plan)
            plan = self.plan
            assert plan is not None
            if plan.kind is Kind.PASS or (plan.kind is Kind.FULL and not self.head):
                # The common case, without a further hop. A HEAD passed through goes as the
                # app gave it, body included: the server drops the content and frames the
                # answer as for the GET (RFC 9110 9.3.2, 8.6), as without the middleware.
                await self.send_server(message)
                if not message.get("more_body", False):
                    self._end(gone=False)
            else:
                await self._on_body(message)
        elif kind == PATHSEND:
            await self._on_pathsend(message)
        else:
            if self.plan is None:
                await self._commit(Plan(Kind.PASS, self.status, self.headers,
                                        reason=f"{kind} from the app"))
            await self.send_server(message)

    async def _drop(self, message: Message) -> None:
        """A send after the middleware ended the response: dropped, within the caps."""
        # "Disconnected Client - send exception": a server whose client has gone may drop
        # what the app still sends (uvicorn and daphne do) and answers receive with
        # http.disconnect; apps listen for that to stop and clean up (Django closes its
        # response and sends request_finished, Starlette below spec 2.4 runs background
        # tasks). An exception here would skip that cleanup (Django re-raises it first), and
        # the response's file would wait for the garbage collector. Each dropped send gives
        # the app's listener a turn; an app that keeps sending regardless is stopped past the
        # caps, as a server that raises stops it. After the server's own send failed, every
        # send raises, as the server's would.
        if self.server_error is not None:
            raise ResponseClosed("the client has gone")
        if self.receiving:
            await self._await_receive()
        self.dropped_messages += 1
        self.dropped_bytes += len(message.get("body", b""))
        if self.dropped_messages > DROP_MESSAGES or self.dropped_bytes > DROP_BYTES:
            raise ResponseClosed("the response has ended; the app kept sending")
        await asyncio.sleep(0)

    async def _await_receive(self) -> None:
        """Wait until the app's receive that is in the server's returns (within DROP_WAIT
        seconds in all): its listener then hears http.disconnect before the caps are used up."""
        # A server may answer that receive from a thread of its own, turns of the event loop
        # later (Granian): without this wait, an app whose listener had not yet had the
        # request message (Starlette's StreamingResponse starts both at once) used up the
        # caps in the meantime and was stopped by an exception instead.
        loop = asyncio.get_running_loop()
        if self.drop_deadline is None:
            self.drop_deadline = loop.time() + DROP_WAIT
        left = self.drop_deadline - loop.time()
        if left > 0:
            if self.received is None or self.received.done():
                self.received = loop.create_future()
            await asyncio.wait([self.received], timeout=left)

    def _on_start(self, message: Message) -> Message | None:
        """Hold the app's start; the start to send now, when its headers decide it."""
        self.start = message
        self.status = str(message["status"])
        # Byte strings (bytes, or the bytearray some apps send): both decode.
        self.headers = [(n.decode("latin-1"), v.decode("latin-1"))
                        for n, v in message.get("headers") or ()]
        self.facts = read_headers(self.status, self.headers)  # one scan of the headers
        if message.get("trailers"):
            # "Response Start": trailers follow the body (a digest of the whole, say): a
            # response that announces them is not reshaped.
            return self._started(Plan(Kind.PASS, self.status, self.headers, reason="trailers"))
        if not needs_body(self.request, self.status, self.headers, self.options, self.facts):
            return self._started(self._decide(None).plan)
        return None

    def _decide(self, found: FoundFile | None) -> Decision:
        """The core's decision, made once per response."""
        return decide_response(self.request, self.status, self.headers, found, self.options,
                               self.scope, facts=self.facts)

    async def _commit(self, decided: Plan) -> None:
        """Send the held ``http.response.start``, rewritten for the plan."""
        await self.send_server(self._started(decided))

    def _started(self, decided: Plan) -> Message:
        """The held ``http.response.start`` rewritten for the plan, which is now decided."""
        self.plan = decided
        if decided.reason == LENGTH_UNKNOWN:
            self.length_warnings.check(decided, _route(self.scope))
        start = self.start
        assert start is not None
        if decided.kind is not Kind.PASS:
            given, headers = self.headers, decided.headers
            if headers[:len(given)] == given:
                # The app's fields unchanged, some appended (a full 200): only those are
                # encoded, the app's go on as they came.
                encoded = [*(start.get("headers") or ()), *_encode(headers[len(given):])]
            else:
                encoded = _encode(headers)
            start = {**start, "status": int(decided.status[:3]), "headers": encoded}
        return start

    async def _on_body(self, message: Message) -> None:
        plan = self.plan
        assert plan is not None
        more_body = bool(message.get("more_body", False))
        if self.head or plan.kind in WRITTEN_HERE:
            # RFC 9110 9.3.2: a HEAD the middleware answers (a FULL: fields it computed) has
            # no content (daphne writes every HEAD body message after the first); a 416, 412
            # or 304 is written here. The app's body is not read: it is stopped.
            await self._finish([] if self.head else fixed_body(plan.kind), more_body)
        elif plan.kind is Kind.PASS or plan.kind is Kind.FULL:
            await self.send_server(message)
            if not more_body:
                self._end(gone=False)
        else:
            if self.sliced is None:
                self.sliced = SlicedBody(plan)
            pieces, done = self.sliced.feed(message.get("body", b""), more_body)
            if done:
                await self._finish(pieces, more_body)
            else:
                await send_pieces(self._send_body, pieces, False)

    async def _finish(self, pieces: list[bytes], more_body: bool) -> None:
        """Complete the response; what an app with more to send sends next is dropped."""
        await send_pieces(self._send_body, pieces, True)
        self.stopped = more_body
        self._end(gone=False)

    async def _on_pathsend(self, message: Message) -> None:
        """Extensions, "Path Send": the whole file, a window of it, or its ranges."""
        try:
            # A client gone (http.disconnect) stops the reading here, the file closed; the
            # send returns, as a server's own path-send to a gone client would.
            with contextlib.suppress(ResponseClosed):
                await self._answer_file(message)
        finally:
            self.stopped = True  # the path-send message is the last one of a response
            self._end(gone=False)

    async def _answer_file(self, message: Message) -> None:
        plan = self.plan
        if plan is not None and (self.head or self.server_pathsend):
            # Decided from the headers alone (a PASS or a FULL): no byte of the file is
            # needed here, the server sends it as it would without the middleware (a HEAD
            # passed through as well: the server drops the content).
            passed = plan.kind is Kind.PASS and self.server_pathsend
            await (send_pieces(self._send_body, [], True) if self.head and not passed
                   else self.send_server(message))
            return
        found = await open_file(str(message["path"]), self.options.block_size)
        eof = None
        try:
            if plan is None:
                # The decision with the file: its size, and validators for a plain file.
                decision = self._decide(found)
                plan, eof = decision.plan, decision.eof
                await self._commit(plan)
        except BaseException:
            close_file(found)
            raise
        forward = None
        if self.server_pathsend:
            async def forward() -> None:
                await self.send_server(message)  # the server's own path-send (zero copy)
        await answer_file(self._send_body, found, plan, eof, self.head, forward,
                          self._check, self._watch_while_sending)

    async def _send_body(self, message: Message) -> None:
        """The server's send; its disconnect error is remembered, not reported again."""
        try:
            await self.send_server(message)
        except OSError as exc:
            self.server_error = exc
            self._end(gone=True)
            raise

    def _check(self) -> None:
        if self.gone:
            raise ResponseClosed("the client has gone")

    def _watch_while_sending(self) -> None:
        """Listen for the disconnect while a file goes out, if the request is read."""
        if not self.receiving and (self.body_read or self.bodiless):
            self._watch()

    # -- receive: what the app is told --

    def _end(self, gone: bool) -> None:
        if gone and not self.ended:
            self.stopped = True  # what the app sends now goes nowhere: dropped
        self.ended = True
        self.gone = self.gone or gone
        if self.ended_event is not None:
            self.ended_event.set()

    async def receive(self) -> Message:
        """The app's receive: ``http.disconnect`` once the response is complete."""
        # "Disconnect - receive event": after the request body, it waits for the client
        # (or the middleware) to end the response.
        while True:
            if self.stash:
                return self.stash.pop(0)
            if self.ended:
                return {"type": "http.disconnect"}
            if self.watcher is None and not self.body_read:
                self.receiving = True
                try:
                    message = await self.receive_server()
                finally:
                    self.receiving = False
                    if self.received is not None and not self.received.done():
                        self.received.set_result(None)
                self._note(message)
                return message
            self._watch()
            event = self.ended_event
            assert event is not None
            await event.wait()

    def _note(self, message: Message) -> bool:
        """Record what a server message tells; False when it is the disconnect."""
        if message.get("type") == "http.disconnect":
            self._end(gone=True)
            return False
        if not message.get("more_body", False):
            self.body_read = True
        return True

    def _watch(self) -> None:
        """Listen for the client's disconnect in a task of our own (cancelled at the end)."""
        if self.ended_event is None:
            self.ended_event = asyncio.Event()
        if self.watcher is None:
            self.watcher = asyncio.ensure_future(self._watcher())

    async def _watcher(self) -> None:
        while not self.ended:
            try:
                message = await self.receive_server()
            except Exception:  # a server whose receive fails has lost its client
                message = {"type": "http.disconnect"}
            had_body = self.body_read
            if self._note(message) and not had_body:
                # the request itself, for the app to read
                self.stash = [*(self.stash or ()), message]
                assert self.ended_event is not None
                self.ended_event.set()
                self.ended_event = asyncio.Event()

