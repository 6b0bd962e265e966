"""Ranged sources on ASGI: ``SourceResponse`` for apps, ``send_source`` for the middleware.

Theory of operation. An app returns (or awaits) ``SourceResponse(source)``. Whether a range
middleware stands between the app and the server decides how the body goes out:

- The scope offers ``SOURCE_EXTENSION`` (``rangewsgi.asgi.RangeMiddleware`` does): the
  response sends ``http.response.start`` with the source's length and validators, then ONE
  ``SOURCE_MESSAGE`` carrying the source in place of body messages. The middleware decides
  the answer from those fields alone (``rangewsgi.plan``) and calls ``send_source``, which
  sends only the bytes the plan asks for: one ``read_range`` call per part, in order; none
  for a ``HEAD``, a ``416``, ``412`` or ``304``.
- No extension (a server alone): the response streams the whole source as the status it
  was given, with ``content-length`` and the validators, and no content for ``HEAD``.

Either way every blocking read runs in a worker thread, a few blocks per trip, so memory
stays bounded and the event loop is never blocked; a client that goes away stops the reading
at the next trip; the source is closed exactly once, after any read still running in its
thread has returned.

This module imports the shared core only (``plan``, ``bodies``, ``sources``): no adapter,
no Werkzeug, and no framework until ``SourceResponse`` is first looked up, which makes it a
``starlette.responses.Response`` subclass when Starlette is installed (FastAPI returns an
endpoint's result untouched only when it is one).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib.util
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from .bodies import exactly, read_source_ranges
from .plan import WRITTEN_HERE, Kind, Plan, fixed_body
from .sources import RangedSource

__all__ = ["SOURCE_EXTENSION", "SOURCE_MESSAGE", "SourceResponse", "send_source"]

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

SOURCE_EXTENSION = "rangewsgi.source"
"""The scope extension a range middleware offers: send the source, not its bytes."""
SOURCE_MESSAGE = "rangewsgi.response.source"
"""The message type that carries the source (``{"type": ..., "source": source}``)."""

# Bytes a worker thread gathers per trip: a few typical blocks (64 KiB), so that a large
# body costs few trips while memory stays bounded whatever its size.
TRIP_BYTES = 256 * 1024
DEFAULT_MEDIA_TYPE = "application/octet-stream"

logger = logging.getLogger("rangewsgi")


class _Trips:
    """Reads of one response in worker threads, and what must wait for the one in flight.

    A source or iterator closed while a thread reads from it would fail under that thread,
    so a release waits for the read: it runs at once when none is in flight, else when the
    read returns (also after a cancellation, without waiting for it here).
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: asyncio.Future[tuple[list[bytes], bool]] | None = None

    async def pull(self, chunks: Iterator[bytes], budget: int) -> tuple[list[bytes], bool]:
        """Up to about ``budget`` bytes of ``chunks``, read in a worker thread."""
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(None, _gather, chunks, budget)
        # Shielded: a cancellation leaves the thread's read to finish; the release waits.
        result = await asyncio.shield(self._pending)
        self._pending = None
        return result

    def release(self, close: Callable[[], None]) -> None:
        """Run ``close`` now, or once the read in flight has returned."""
        pending = self._pending
        if pending is None or pending.done():
            close()
            return

        def late(done: asyncio.Future[Any]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved: the read of a response that has stopped
            try:
                close()
            except Exception:  # nobody awaits this callback: logged, not lost
                logger.exception("closing a ranged source after a stopped response failed")

        pending.add_done_callback(late)


# The trips of the response being sent, shared by ``SourceResponse`` and ``send_source``
# (the middleware calls it inside the response's own send): the source is closed after the
# last read in flight, whichever of the two is stopped.
_TRIPS: contextvars.ContextVar[_Trips | None] = contextvars.ContextVar(
    "rangewsgi_source_trips", default=None)


def _gather(chunks: Iterator[bytes], budget: int) -> tuple[list[bytes], bool]:
    """Up to about ``budget`` bytes of ``chunks`` (blocking), and whether they ended."""
    pieces: list[bytes] = []
    size = 0
    for piece in chunks:
        if not piece:
            continue
        pieces.append(piece)
        size += len(piece)
        if size >= budget:
            return pieces, False
    return pieces, True


def _body(data: bytes, more_body: bool) -> Message:
    """ASGI HTTP, "Response Body - send event"."""
    return {"type": "http.response.body", "body": data, "more_body": more_body}


async def _send_fixed(send: Send, data: list[bytes]) -> None:
    """A short body written here, completing the response (one message)."""
    await send(_body(b"".join(data), False))


async def _stream(send: Send, chunks: Iterator[bytes], check: Callable[[], None]) -> None:
    """Send ``chunks``, read in worker threads, then complete the response.

    ``check()`` runs before each trip and raises when the response must stop. ``chunks`` is
    closed on every path, after a read still in flight.
    """
    trips = _TRIPS.get() or _Trips()
    try:
        ended = False
        while not ended:
            check()
            pieces, ended = await trips.pull(chunks, TRIP_BYTES)
            last = len(pieces) - 1
            for index, piece in enumerate(pieces):
                await send(_body(piece, not ended or index < last))
            if ended and not pieces:
                await send(_body(b"", False))
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            trips.release(close)


def _whole(source: RangedSource) -> Iterator[bytes]:
    """The whole source, counted: more or fewer bytes than ``size`` abort the response."""
    return exactly(iter(source), source.size)


def _planned(source: RangedSource, plan: Plan) -> Iterator[bytes]:
    """The bytes of a ``200`` or ``206`` answer for ``plan``."""
    if plan.kind is Kind.PARTIAL or plan.kind is Kind.MULTIPART:
        # RFC 9110 14.2: exactly the ranges, each by one read_range call, in the order sent.
        return read_source_ranges(source, plan.ranges, plan.framing)
    return _whole(source)


async def send_source(send: Send, source: RangedSource, plan: Plan, head: bool,
                      check: Callable[[], None]) -> None:
    """Send the body ``plan`` asks for out of ``source`` and complete the response.

    Nothing for ``HEAD`` (RFC 9110 9.3.2), the fixed body of a 416, 412 or 304, the whole
    source for a 200, the parts of a 206; blocking reads run in worker threads. ``check()``
    raises when the client has gone. The source is not closed here.
    """
    if head or plan.kind in WRITTEN_HERE:
        await _send_fixed(send, [] if head else fixed_body(plan.kind))
        return
    await _stream(send, _planned(source, plan), check)


# -- the response object --


def _latin1(value: object) -> bytes:
    return str(value).encode("latin-1")


def _source_fields(source: RangedSource, given: set[bytes]) -> list[tuple[bytes, bytes]]:
    """The source's own fields the app did not give: validators (RFC 9110 8.8) and coding."""
    fields = []
    for name, attribute in ((b"etag", "etag"), (b"last-modified", "last_modified"),
                            (b"content-encoding", "content_encoding")):
        value = getattr(source, attribute, None)
        if name not in given and isinstance(value, str) and value:
            fields.append((name, _latin1(value)))
    return fields


class _SourceResponse:
    """A ranged source as an ASGI response: ``await response(scope, receive, send)``.

    Args:
        source: any ranged source (``rangewsgi.sources.RangedSource``); the response closes
            it, exactly once, on every path.
        status_code: the status of the whole representation.
        headers: further header fields; ``content-length`` is always the source's ``size``.
        media_type: the ``content-type``; default the source's ``content_type``, else
            ``application/octet-stream``.
        background: an awaitable callable run after the response is complete (Starlette's
            ``BackgroundTask``; FastAPI sets its own).

    The source's ``etag``, ``last_modified`` and ``content_encoding`` become header fields
    when ``headers`` has none of that name. Under ``rangewsgi.asgi.RangeMiddleware`` the
    middleware answers ranges and preconditions out of the source; alone, the whole source
    goes out (no content for ``HEAD``).
    """

    media_type: str | None = None

    def __init__(self, source: RangedSource, status_code: int = 200,
                 headers: Mapping[str, str] | None = None, media_type: str | None = None,
                 background: Callable[[], Awaitable[Any]] | None = None) -> None:
        self.source = source
        self.status_code = status_code
        self.background = background
        if media_type is not None:
            self.media_type = media_type
        self.raw_headers = self._fields(headers or {})

    def _fields(self, headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
        # RFC 9110 8.6: the length of the whole representation; an app's own is replaced.
        raw = [(_latin1(k).lower(), _latin1(v)) for k, v in headers.items()
               if k.lower() != "content-length"]
        raw.append((b"content-length", _latin1(self.source.size)))
        given = {name for name, _ in raw}
        if b"content-type" not in given:
            kind = (self.media_type or getattr(self.source, "content_type", None)
                    or DEFAULT_MEDIA_TYPE)
            raw.append((b"content-type", _latin1(kind)))
        return raw + _source_fields(self.source, given)

    def _start(self) -> Message:
        return {"type": "http.response.start", "status": self.status_code,
                "headers": list(self.raw_headers)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        trips = _Trips()
        token = _TRIPS.set(trips)
        try:
            if SOURCE_EXTENSION in (scope.get("extensions") or {}):
                await send(self._start())
                await send({"type": SOURCE_MESSAGE, "source": self.source})
            else:
                await self._alone(scope, receive, send)
        finally:
            _TRIPS.reset(token)
            trips.release(self.source.close)
        if self.background is not None:
            await self.background()

    async def _alone(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The whole source with no middleware, until the client goes away."""
        gone = asyncio.Event()
        guarded = functools.partial(_send_while_connected, send, gone)
        try:
            await guarded(self._start())
            if scope.get("method") == "HEAD":
                await _send_fixed(guarded, [])  # RFC 9110 9.3.2: no content
                return
            listener = asyncio.ensure_future(_listen(receive, gone))
            try:
                await _stream(guarded, _whole(self.source), functools.partial(_check, gone))
            finally:
                listener.cancel()
        except _ClientGone:
            return  # nothing is left to send to; the source is closed all the same


class _ClientGone(Exception):
    """The client went away: the response stops."""


def _check(gone: asyncio.Event) -> None:
    if gone.is_set():
        raise _ClientGone


async def _send_while_connected(send: Send, gone: asyncio.Event, message: Message) -> None:
    """The server's send; its failure means the client has gone.

    ASGI "Disconnected Client - send exception" (spec 2.4): a server's ``send`` raises an
    ``OSError`` once the connection is closed. Errors of the source itself (also
    ``OSError``: ``SourceChanged``) are raised in the reading thread, not here, and abort
    the response.
    """
    try:
        await send(message)
    except OSError:
        gone.set()
        raise _ClientGone from None


async def _listen(receive: Receive, gone: asyncio.Event) -> None:
    """Wait for ``http.disconnect`` ("Disconnect - receive event"); request bodies skipped."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            gone.set()
            return


@functools.cache
def _response_class() -> type[_SourceResponse]:
    """``SourceResponse``: a ``starlette.responses.Response`` too when Starlette is there.

    FastAPI hands back an endpoint's result as the response only when it is a Starlette
    ``Response``, and reads a route's return annotation the same way; Starlette and Litestar
    call any ASGI callable. Starlette is imported on the first lookup only, not with this
    module.
    """
    if importlib.util.find_spec("starlette") is None:
        return _SourceResponse
    from starlette.responses import Response

    # Ours first in the MRO: __init__, __call__ and the fields are this class's; Starlette's
    # ``headers`` (over ``raw_headers``) and ``set_cookie`` work on them.
    return type("SourceResponse", (_SourceResponse, Response),
                {"__module__": __name__, "__doc__": _SourceResponse.__doc__})


if TYPE_CHECKING:
    SourceResponse = _SourceResponse
else:
    def __getattr__(name: str) -> Any:
        if name == "SourceResponse":
            return _response_class()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
