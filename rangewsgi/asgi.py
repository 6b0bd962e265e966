"""The ASGI adapter: hold ``http.response.start`` until the engine decides, then carry out
the engine's step in ASGI messages.

Theory of operation
-------------------
One ``_Exchange`` per GET or HEAD, in one of these states (``State``):

====================  ====================================================================
AWAITING_START        nothing sent yet; early hints go through
HELD                  the app's ``http.response.start`` is held until the body shows what it
                      is (messages, a path-send file, a ranged source)
STREAMING             the start is sent; the body goes out as the engine's step says
COMPLETE              the app's own response is complete; what it sends next goes through
DROPPING              the middleware completed the answer; the app's further sends are
                      dropped (within ``DROP_MESSAGES`` and ``DROP_BYTES``)
CLIENT_GONE           the server said ``http.disconnect`` or its send failed
====================  ====================================================================

``_TRANSITIONS`` lists the moves; the last three states are final, and entering one tells
the ``DisconnectWatcher`` (the app's receive then says ``http.disconnect``). The decision
and the choice of body are the engine's (``engine.respond``); section names below are those
of the ASGI "HTTP & WebSocket" message format and of its extensions document.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import inspect
import operator
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Literal

from .asgi_bodies import (
    Message,
    SlicedBody,
    close_file,
    file_chunks,
    open_file,
    send_chunks,
    send_pieces,
)
from .asgi_disconnect import DisconnectWatcher
from .asgi_sources import SOURCE_EXTENSION, SOURCE_MESSAGE
from .bodies import read_file_ranges
from .decision import (
    NOT_GIVEN,
    LengthWarnings,
    NotGiven,
    cached_content_for,
    content_for,
    needs_body,
    wants_content,
)
from .digests import ContentValidators
from .engine import (
    NO_ZERO_COPY,
    PLAIN_ACCEPT_RANGES,
    PLAIN_BODY,
    PLAIN_FULL_PATH,
    PLAIN_UNTOUCHED,
    REQUEST_FIELDS,
    Action,
    Plain,
    RequestView,
    Response,
    Route,
    Server,
    Step,
    plain_answer,
    plain_step,
    read_request,
    respond,
    step_for,
)
from .files import FoundFile
from .options import Options, make_options
from .plan import LENGTH_UNKNOWN, Headers, Kind, Plan, ResponseFacts, read_headers
from .servers import PATHSEND as PATHSEND_ROW
from .sources import RangedSource, is_ranged_source

__all__ = ["Predicate", "RangeMiddleware", "ResponseClosed", "SourceResponse"]

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
# The request fields the engine reads, by their lower-case bytes in the scope.
_FIELD_NAMES = {name.encode("latin-1"): name for name in REQUEST_FIELDS}
_ACCEPT_RANGES = (b"accept-ranges", b"bytes")  # RFC 9110 14.3
# The engine's view of a GET and of a HEAD that carry none of those fields, read once.
_PLAIN_VIEWS = {method: read_request(method, {}) for method in ("GET", "HEAD")}


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


# Every option's default, as ``Options`` writes it: the signature below shows them.
_DEFAULT = Options()


def _is_wsgi(app: object) -> bool:
    """Whether ``app`` is provably a WSGI app: a plain (not async) callable that takes
    exactly two positional parameters. A signature that cannot be read proves nothing."""
    call = getattr(app, "__call__", None)  # noqa: B004 - the method itself is wanted
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call):
        return False
    try:
        parameters = inspect.signature(app).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    positional = 0
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return False
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional == 2


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
    ``GET`` or ``HEAD`` are touched; a ``HEAD``'s ``Range`` and ``If-Range`` are hidden from
    the app (RFC 9110 14.2). A ranged source sent as ``rangewsgi.asgi.SourceResponse`` is
    answered by ``read_range`` per part. Given a WSGI app (a plain two-argument callable),
    it raises ``TypeError`` when made. Once the middleware has completed an answer, the app's
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
        file_validators: for a path-send file without ``ETag`` and ``Last-Modified``:
            ``True``, a strong ``ETag`` (size and modification time) and a
            ``Last-Modified``; ``"content"``, a strong ``ETag`` from the file's SHA-256 and
            a ``Repr-Digest`` (RFC 9530) as well, the same on every replica; ``False``, none.
    """

    def __init__(self, app: ASGIApp, *, max_ranges: int = _DEFAULT.max_ranges,
                 max_multipart_excess: int = _DEFAULT.max_multipart_excess,
                 predicate: Predicate | None = None, block_size: int = _DEFAULT.block_size,
                 conditional: bool = _DEFAULT.conditional,
                 file_validators: bool | Literal["content"] = _DEFAULT.file_validators,
                 **unknown: object) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application (a callable), not {app!r}")
        if _is_wsgi(app):
            raise TypeError(f"{app!r} is a WSGI application (a plain callable of two "
                            "arguments, environ and start_response): wrap it with "
                            "`from rangewsgi import RangeMiddleware`")
        self.app = app
        # An unknown name is refused with its close match, a WSGI-only one as such.
        self.options: Options = make_options("asgi", {
            "max_ranges": max_ranges, "max_multipart_excess": max_multipart_excess,
            "predicate": predicate, "block_size": block_size, "conditional": conditional,
            "file_validators": file_validators, **unknown})
        self.length_warnings = LengthWarnings(_LENGTH_FIX)
        # The lean pass-through (``_Lean``) decides without asking a predicate.
        self.lean = self.options.predicate is None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # websocket and lifespan are not ours
            return
        if scope.get("method") == "GET" and self.lean and _plain_request(scope):
            # A HEAD takes the full path: answered here, its content is never sent, and an
            # app that streams it is stopped through the receive the middleware gives it.
            await _Lean(self, scope, receive, send).run()
            return
        view, bodiless = _request(scope)
        if view.route is Route.UNTOUCHED:
            # RFC 9110 14.2: Range is defined for GET only; preconditions cannot be evaluated
            # after an unsafe method has run (13.2.1).
            await self.app(scope, receive, send)
            return
        await _Exchange(self, scope, receive, send, view, bodiless).run()


def _request(scope: Scope) -> tuple[RequestView, bool]:
    """The engine's view of the request, and whether the request carries no body."""
    method = scope.get("method")
    if method != "GET" and method != "HEAD":
        return read_request(str(method), {}), False
    fields: dict[str, str] = {}
    bodiless = scope.get("http_version") in ("1.0", "1.1")
    for name, value in scope.get("headers") or ():
        name = bytes(name).lower()
        key = _FIELD_NAMES.get(name)
        if key is not None:
            # RFC 9110 5.3: repeated field lines combine into one comma-separated list.
            text = bytes(value).decode("latin-1")
            seen = fields.get(key)
            fields[key] = text if seen is None else f"{seen}, {text}"
        elif name == b"transfer-encoding" or (name == b"content-length"
                                               and bytes(value).strip() != b"0"):
            bodiless = False
    return (read_request(method, fields) if fields else _PLAIN_VIEWS[method]), bodiless


_FIELDS = frozenset(_FIELD_NAMES)
_NAME = operator.itemgetter(0)


def _plain_request(scope: Scope) -> bool:
    """Whether a request carries none of the fields the engine reads (Range, If-Range, the
    preconditions), told in a few C-level steps; False when unsure (names not all lower
    case: "HTTP Connection Scope" says they "should be lowercased"), and ``_request`` reads
    the request in full."""
    try:
        names = list(map(_NAME, scope.get("headers") or ()))
        return _FIELDS.isdisjoint(names) and (not names or b"".join(names).islower())
    except TypeError:  # a name that is not bytes: the full reading
        return False


def _app_scope(scope: Scope) -> tuple[Scope, bool]:
    """The scope the app is shown, and whether the server offers path-send.

    A copy: nothing the app is shown leaks back into the server's scope. Extensions, "Path
    Send": offered, so that the file behind the body is known; and the ranged-source message
    (``asgi_sources``). Zero copy send cannot carry a slice the middleware chooses: not
    offered. The spec version is at most ``SPEC_VERSION``.
    """
    extensions = scope.get("extensions") or {}
    server_pathsend = PATHSEND in extensions
    extensions = {**extensions, PATHSEND: {}, SOURCE_EXTENSION: {}}
    extensions.pop("http.response.zerocopysend", None)
    shown = {**scope, "extensions": extensions}
    asgi = shown.get("asgi")
    if isinstance(asgi, dict):
        version = asgi.get("spec_version")
        if version != SPEC_VERSION and _newer_than_ours(version):
            shown["asgi"] = {**asgi, "spec_version": SPEC_VERSION}
    return shown, server_pathsend


_NEWER: dict[object, bool] = {}  # spec version -> later than SPEC_VERSION, as seen


def _newer_than_ours(version: object) -> bool:
    """``_newer(version, SPEC_VERSION)``, remembered for the few versions servers send."""
    try:
        return _NEWER[version]
    except (KeyError, TypeError):
        newer = _newer(str(version), SPEC_VERSION)
        if len(_NEWER) < 64:
            with contextlib.suppress(TypeError):  # an unhashable value: not remembered
                _NEWER[version] = newer
        return newer


class _Lean:
    """A ``GET`` without Range or precondition fields, under options without a predicate:
    the pass-through most requests of every app take, kept to a few lookups.

    The app is shown the same scope as by ``_Exchange``. Its ``http.response.start`` is
    decided by ``engine.plain_answer`` from the fields alone: a rangeable ``200`` with a
    length and validators only gains ``Accept-Ranges: bytes`` (RFC 9110 14.3), anything else
    that is not a rangeable ``200`` goes untouched, and the body messages that follow go to
    the server as they come (a path-send too, where the server offers it). Every other case
    (a start whose answer needs the body or the full reading, trailers, a path-send the
    server does not offer, a ranged source) is handed to a full ``_Exchange``, in the state
    the messages so far put it in. The app's ``receive`` is the server's: the middleware
    never ends a plain GET's response before the app does (no Range, no precondition: no
    early answer), so it never needs to tell the app that the response is over.
    """

    __slots__ = ("answer", "exchange", "mw", "receive", "scope", "send_server",
                 "server_pathsend", "start")

    def __init__(self, mw: RangeMiddleware, scope: Scope, receive: Receive,
                 send: Send) -> None:
        self.mw = mw
        self.scope, self.server_pathsend = _app_scope(scope)
        self.receive = receive
        self.send_server = send
        self.answer: Plain | None = None  # the start went out, decided so
        self.start: Message | None = None
        self.exchange: _Exchange | None = None

    async def run(self) -> None:
        try:
            await self.mw.app(self.scope, self.receive, self.send)
        except Exception as exc:
            exchange = self.exchange
            if (exchange is not None and exchange.state in _FINAL
                    and _from_us(exc, exchange.server_error)):
                return  # the response is out (or the client gone): a clean end
            raise
        finally:
            if self.exchange is not None:
                self.exchange.watcher.close()
        exchange = self.exchange
        held = exchange.start if exchange is not None else self.start
        if (held is not None and self.answer is None
                and (exchange is None or exchange.state is State.HELD)):
            await self.send_server(held)  # started without a body: as the app left it

    async def send(self, message: Message) -> None:
        exchange = self.exchange
        if exchange is not None:
            await exchange.send(message)
            return
        kind = message["type"]
        answer = self.answer
        if answer is None:
            held = self.start
            if held is None:
                if kind != "http.response.start":
                    await self.send_server(message)  # early hints, before the start
                    return
                if not message.get("trailers"):
                    answer = plain_answer(str(message["status"]),
                                          message.get("headers") or (),
                                          self.mw.options.file_validators)
                    if answer is PLAIN_BODY:
                        self.start = message  # held: a file body would get validators
                        return
                    if answer is PLAIN_ACCEPT_RANGES or answer is PLAIN_UNTOUCHED:
                        await self._send_start(message, answer)
                        return
            elif kind == "http.response.body":
                # Body messages, not a file: no validators to give; the fields decide.
                answer = plain_answer(str(held["status"]), held.get("headers") or (), False)
                if answer is PLAIN_ACCEPT_RANGES or answer is PLAIN_UNTOUCHED:
                    await self._send_start(held, answer)
                else:
                    answer = None
        if answer is not None and (kind == "http.response.body"
                                   or (kind == PATHSEND and self.server_pathsend)):
            await self.send_server(message)  # the body, or the server's own path-send
            return
        await self._hand_over(message)

    async def _send_start(self, message: Message, answer: Plain) -> None:
        """The app's start as ``answer`` says: with ``Accept-Ranges: bytes`` appended for a
        rangeable 200 (RFC 9110 14.3), else untouched."""
        self.answer, self.start = answer, message
        if answer is PLAIN_ACCEPT_RANGES:
            message = {**message, "headers": [*(message.get("headers") or ()), _ACCEPT_RANGES]}
        await self.send_server(message)

    async def _hand_over(self, message: Message) -> None:
        """Give ``message``, and the start if it is still held, to a full exchange put in
        the state the messages so far put it in."""
        view, bodiless = _request(self.scope)
        exchange = _Exchange(self.mw, self.scope, self.receive, self.send_server, view,
                             bodiless, (self.scope, self.server_pathsend))
        self.exchange = exchange
        held = self.start
        if self.answer is not None:
            assert held is not None
            exchange.start = held
            exchange.status = str(held["status"])
            exchange.step = plain_step(False, self.answer)
            exchange.state = State.STREAMING
        elif held is not None:
            await exchange.send(held)
        await exchange.send(message)


def _route(scope: Scope) -> tuple[str, str]:
    """The route a warning names: (prefix, path), the path whole when it holds the prefix."""
    # "HTTP Connection Scope": path is the full path (root_path included) since spec 2.x
    # servers and routers added it; older ones gave it without.
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return ("", path) if path.startswith(root) else (root, path)


@functools.lru_cache(maxsize=32)  # servers announce few versions: parsed once each
def _newer(version: str, than: str) -> bool:
    """Whether the spec version ``version`` ("2.4") is later than ``than``."""
    try:
        given = tuple(int(part) for part in version.split("."))
    except ValueError:
        return False  # not a version: left as the server gave it
    return given > tuple(int(part) for part in than.split("."))


def _decode(start: Message) -> Headers:
    """The fields of a "Response Start" as text."""
    # Byte strings (bytes, or the bytearray some apps send): both decode.
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in start.get("headers") or ()]


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


class State(enum.Enum):
    """Where an exchange is (see the module docstring)."""

    # Members are singletons: hashing by identity runs no Python code per set or dict lookup.
    __hash__ = object.__hash__

    AWAITING_START = "awaiting start"
    HELD = "held"
    STREAMING = "streaming"
    COMPLETE = "complete"
    DROPPING = "dropping"
    CLIENT_GONE = "client gone"


_FINAL = frozenset({State.COMPLETE, State.DROPPING, State.CLIENT_GONE})
_TRANSITIONS: dict[State, frozenset[State]] = {
    State.AWAITING_START: frozenset({State.HELD, State.STREAMING, State.CLIENT_GONE}),
    State.HELD: frozenset({State.STREAMING, State.CLIENT_GONE}),
    State.STREAMING: frozenset({State.COMPLETE, State.DROPPING, State.CLIENT_GONE}),
    State.COMPLETE: frozenset(),
    State.DROPPING: frozenset(),
    State.CLIENT_GONE: frozenset(),
}


class _Exchange:
    """One GET or HEAD through the middleware."""

    # State that most responses never change starts as a class attribute: making one
    # exchange per request then costs only what each request sets.
    state = State.AWAITING_START
    start: Message | None = None
    status = ""
    headers: Headers = []  # noqa: RUF012 - replaced, never mutated
    facts: ResponseFacts | None = None
    fields_read = False  # ``headers`` and ``facts`` are the held start's
    step: Step | None = None
    sliced: SlicedBody | None = None
    dropped_bytes = 0
    dropped_messages = 0
    drop_deadline: float | None = None
    server_error: OSError | None = None

    def __init__(self, mw: RangeMiddleware, scope: Scope, receive: Receive, send: Send,
                 view: RequestView, bodiless: bool,
                 shown: tuple[Scope, bool] | None = None) -> None:
        self.app = mw.app
        self.options = mw.options
        self.length_warnings = mw.length_warnings
        assert view.request is not None
        self.view = view
        self.request = view.request
        self.bodiless = bodiless
        self.head = view.request.method == "HEAD"
        self.send_server = send
        self.watcher = DisconnectWatcher(receive, self._client_gone)
        # ``shown``: the scope the app was already given (``_Lean``), and whether the server
        # offers path-send.
        self.scope, self.server_pathsend = shown or _app_scope(scope)
        if view.hide:
            # RFC 9110 14.2: a server "MUST ignore a Range header field received with a
            # request method ... for which range handling is not defined": hidden from apps
            # that would range a HEAD themselves.
            hidden = {name.encode("latin-1") for name in view.hide}
            self.scope["headers"] = [(n, v) for n, v in self.scope.get("headers") or ()
                                     if bytes(n).lower() not in hidden]

    # -- states --

    def _to(self, state: State) -> None:
        """Move to ``state`` if ``_TRANSITIONS`` allows it from here (else stay)."""
        if state not in _TRANSITIONS[self.state]:
            return
        self.state = state
        if state in _FINAL:
            self.watcher.finish()

    def _client_gone(self) -> None:
        self._to(State.CLIENT_GONE)

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.watcher.receive, self.send)
        except Exception as exc:
            if self.state in _FINAL and _from_us(exc, self.server_error):
                return  # the response is out (or the client gone): a clean end for the server
            raise
        finally:
            self.watcher.close()
        if self.state is State.HELD:
            assert self.start is not None
            await self.send_server(self.start)  # started without a body: as the app left it

    # -- send: the messages the app sends --

    async def send(self, message: Message) -> None:
        state = self.state
        if state is State.DROPPING or state is State.CLIENT_GONE:
            await self._drop(message)
            return
        kind = message["type"]
        if state is State.AWAITING_START:
            if kind == "http.response.start":
                await self._on_start(message)
            else:
                await self.send_server(message)  # early hints
        elif state is State.COMPLETE:
            await self.send_server(message)  # what follows the app's completed body
        elif kind == "http.response.body":
            await self._on_body(message)
        elif kind == PATHSEND:
            await self._on_pathsend(message)
        elif kind == SOURCE_MESSAGE and is_ranged_source(message.get("source")):
            await self._on_source(message["source"])
        else:
            if self.state is State.HELD:
                if not self.fields_read:
                    self._read_fields()
                await self._commit(step_for(Plan(Kind.PASS, self.status, self.headers,
                                                 reason=f"{kind} from the app"), self.head))
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
        if not self.watcher.receiving:
            return
        loop = asyncio.get_running_loop()
        if self.drop_deadline is None:
            self.drop_deadline = loop.time() + DROP_WAIT
        await self.watcher.receive_returned(self.drop_deadline - loop.time())

    # -- deciding --

    async def _on_start(self, message: Message) -> None:
        """Hold the app's start, or send it now when its headers decide the answer."""
        self.start = message
        self.status = str(message["status"])
        self.state = State.HELD
        if (self.view.route is Route.PLAIN and self.options.predicate is None
                and not message.get("trailers")):
            answer = plain_answer(self.status, message.get("headers") or (),
                                  self.options.file_validators)
            if answer is PLAIN_BODY:
                return  # decided with the body
            if answer is not PLAIN_FULL_PATH:
                await self._send_plain(message, answer)
                return
        self._read_fields()
        if message.get("trailers"):
            # "Response Start": trailers follow the body (a digest of the whole, say): a
            # response that announces them is not reshaped.
            plan = Plan(Kind.PASS, self.status, self.headers, reason="trailers")
            await self._commit(step_for(plan, self.head))
        elif not needs_body(self.request, self.status, self.headers, self.options,
                            self.facts):
            await self._commit(self._respond())

    async def _send_plain(self, message: Message, answer: Plain) -> None:
        """The lean path: the app's start, with ``Accept-Ranges: bytes`` appended for a
        rangeable 200 (``engine.plain_answer``)."""
        self.step = plain_step(self.head, answer)
        if answer is PLAIN_ACCEPT_RANGES:
            message = {**message, "headers": [*(message.get("headers") or ()), _ACCEPT_RANGES]}
        self._to(State.STREAMING)
        await self.send_server(message)

    def _read_fields(self) -> None:
        """The held start's fields as text, and one scan of them (``plan.read_headers``)."""
        assert self.start is not None
        self.headers = _decode(self.start)
        self.facts = read_headers(self.status, self.headers)
        self.fields_read = True

    def _respond(self, found: FoundFile | None = None, source: RangedSource | None = None,
                 server: Server = NO_ZERO_COPY,
                 content: ContentValidators | NotGiven | None = NOT_GIVEN) -> Step:
        """The engine's step, made once per response."""
        if not self.fields_read:
            self._read_fields()
        response = Response(self.status, self.headers, self.facts)
        return respond(self.request, response, self.options, self.scope, found, source,
                       server, content)[0]

    async def _commit(self, step: Step) -> None:
        """Send the held ``http.response.start``, rewritten for the step's plan."""
        self.step = step
        decided = step.plan
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
        self._to(State.STREAMING)
        await self.send_server(start)

    # -- the body: one way per engine action --

    async def _on_body(self, message: Message) -> None:
        if self.step is None:
            await self._decide_without_file()
        step = self.step
        assert step is not None
        more_body = bool(message.get("more_body", False))
        if step.action is Action.FORWARD:
            # A HEAD passed through goes as the app gave it, body included: the server drops
            # the content and frames the answer as for the GET (RFC 9110 9.3.2, 8.6), as
            # without the middleware.
            await self.send_server(message)
            if not more_body:
                self._to(State.COMPLETE)
        elif step.action is Action.STREAM_SLICE:
            if self.sliced is None:
                self.sliced = SlicedBody(step.ranges, step.framing)
            pieces, done = self.sliced.feed(message.get("body", b""), more_body)
            if done:
                await self._finish(pieces, more_body)
            else:
                await send_pieces(self._send_body, pieces, False)
        else:
            # FIXED: a 416, 412 or 304 written here, or a HEAD the middleware answers, with
            # no content (RFC 9110 9.3.2). The app's body is not read: it is stopped.
            await self._finish([step.fixed] if step.fixed else [], more_body)

    async def _decide_without_file(self) -> None:
        """Commit the step for a body of messages: no file, so no validators to give."""
        if self.view.route is Route.PLAIN and self.options.predicate is None:
            start = self.start
            assert start is not None
            answer = plain_answer(self.status, start.get("headers") or (), False)
            if answer is PLAIN_ACCEPT_RANGES or answer is PLAIN_UNTOUCHED:
                await self._send_plain(start, answer)
                return
        await self._commit(self._respond())

    async def _finish(self, pieces: list[bytes], more_body: bool) -> None:
        """Complete the response; what an app with more to send sends next is dropped."""
        await send_pieces(self._send_body, pieces, True)
        self._to(State.DROPPING if more_body else State.COMPLETE)

    async def _on_pathsend(self, message: Message) -> None:
        """Extensions, "Path Send": the whole file, a window of it, or its ranges."""
        try:
            # A client gone (http.disconnect) stops the reading here, the file closed; the
            # send returns, as a server's own path-send to a gone client would.
            with contextlib.suppress(ResponseClosed):
                await self._answer_file(message)
        finally:
            self._to(State.DROPPING)  # the path-send message is the last one of a response

    async def _answer_file(self, message: Message) -> None:
        step = self.step
        if step is not None and (step.action is Action.FIXED or self.server_pathsend
                                 or self.head):
            # Decided from the headers alone: no byte of the file is needed here.
            await self._forward_pathsend(step, message, None)
            return
        found = await open_file(str(message["path"]), self.options.block_size)
        try:
            if step is None:
                # The decision with the file: its size, and validators for a plain file.
                server = Server(PATHSEND_ROW) if self.server_pathsend else NO_ZERO_COPY
                step = await self._respond_with_file(found, server)
                await self._commit(step)
        except BaseException:
            close_file(found)
            raise
        if step.action is Action.FILE_RANGES:
            chunks = read_file_ranges(found.file, step.base, step.ranges, step.framing,
                                      found.blksize)
            self.watcher.watch_while_sending(self.bodiless)
            await send_chunks(self._send_body, chunks, found, self._check)
            return
        await self._forward_pathsend(step, message, found)

    async def _respond_with_file(self, found: FoundFile, server: Server) -> Step:
        """``_respond`` for a path-send file; validators from its content (``"content"``)
        are read in a worker thread, never on the event loop."""
        if not self.fields_read:
            self._read_fields()
        if not wants_content(self.options, self.facts):
            return self._respond(found, server=server)
        content = cached_content_for(found)
        if content is None:
            content = await asyncio.to_thread(content_for, found)
        return self._respond(found, server=server, content=content)

    async def _forward_pathsend(self, step: Step, message: Message,
                                found: FoundFile | None) -> None:
        """The file as the app sent it (FORWARD), as a window the server sends whole
        (SERVER_WINDOW), or the fixed answer (FIXED); ``found`` is closed on every path."""
        chunks = None
        try:
            if step.action is Action.FIXED:
                await send_pieces(self._send_body, [step.fixed] if step.fixed else [], True)
            elif self.server_pathsend:
                await self.send_server(message)  # the server's own path-send (zero copy)
            elif self.head:
                # A HEAD passed through: the server would drop the content (9.3.2).
                await send_pieces(self._send_body, [], True)
            else:
                # A path-send the server does not offer: the file read here, for the
                # Content-Length of a full 200, else to its end.
                if found is None:
                    found = await open_file(str(message["path"]), self.options.block_size)
                chunks = file_chunks(found, self._full_length(step))
        finally:
            if chunks is None and found is not None:
                close_file(found)
        if chunks is not None:
            assert found is not None
            self.watcher.watch_while_sending(self.bodiless)
            await send_chunks(self._send_body, chunks, found, self._check)

    def _full_length(self, step: Step) -> int | None:
        """The Content-Length of a full 200 the step forwards; None for a pass-through."""
        if step.plan.kind is Kind.PASS:
            return None
        assert self.start is not None
        facts = read_headers(self.status, _decode(self.start))
        return None if facts is None else facts.length

    async def _on_source(self, source: RangedSource) -> None:
        """A ranged source (``asgi_sources.SOURCE_MESSAGE``): the parts the plan asks for,
        read in worker threads; the last message of the response."""
        from .asgi_sources import send_source

        try:
            step = self.step
            if step is None:
                step = self._respond(source=source)
                await self._commit(step)
            self.watcher.watch_while_sending(self.bodiless)
            with contextlib.suppress(ResponseClosed):
                await send_source(self._send_body, source, step.plan, self.head, self._check)
        finally:
            self._to(State.DROPPING)

    async def _send_body(self, message: Message) -> None:
        """The server's send; its disconnect error is remembered, not reported again."""
        try:
            await self.send_server(message)
        except OSError as exc:
            self.server_error = exc
            self._client_gone()
            raise

    def _check(self) -> None:
        if self.state is State.CLIENT_GONE:
            raise ResponseClosed("the client has gone")


if TYPE_CHECKING:
    from .asgi_sources import SourceResponse
else:
    def __getattr__(name: str) -> Any:
        # ``SourceResponse`` is made on first use (a Starlette ``Response`` too when Starlette
        # is installed): importing this module imports no Starlette.
        if name == "SourceResponse":
            from . import asgi_sources

            return asgi_sources.SourceResponse
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
