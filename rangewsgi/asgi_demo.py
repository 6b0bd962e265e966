"""The ASGI side of ``python -m rangewsgi``: uvicorn, a range-unaware directory app, a request log.

The directory app answers plain ``200``s (``content-length``, ``etag``, ``last-modified``) and
knows nothing of Range, so every ``206`` and ``304`` seen comes from
``rangewsgi.asgi.RangeMiddleware``. The log wrapper sits between uvicorn and everything else
and writes one line per request, in the WSGI demo's format, from the messages that really
went to the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TextIO
from urllib.parse import quote, unquote_to_bytes

from .asgi import ASGIApp, Receive, Scope, Send
from .asgi_bodies import Message, body_message, send_chunks
from .asgi_disconnect import DisconnectWatcher
from .demo_common import (
    BLOCK,
    HANGUP,
    VALIDATORS,
    Exchange,
    bind_socket,
    describe,
    directory_answer,
    is_asgi_app,
    listen,
    require_uvicorn,
    signals_noted,
)
from .files import FoundFile, SeekableFile, TruncatedBody

__all__ = ["is_asgi_app", "logged", "make_asgi_directory_app", "require_uvicorn", "serve_asgi"]

PATHSEND = "http.response.pathsend"
# Seconds uvicorn waits for responses still running when it is told to stop. A media
# response can run for as long as the file plays, so the demo ends those itself (``_Stopper``)
# and this bounds only what is left.
_GRACE = 1


# --- the directory app ----------------------------------------------------------------------

def _headers(fields: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in fields]


def _url_path(scope: Scope) -> tuple[str, str]:
    """The request path below the mount point as text (percent-decoded once), and that point."""
    raw = scope.get("raw_path")
    if raw:  # the bytes the client sent: names that are not UTF-8 stay reachable
        path = unquote_to_bytes(bytes(raw)).decode("utf-8", "surrogateescape")
    else:
        path = str(scope.get("path", "/"))
    prefix = str(scope.get("root_path", "")).rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix):]
    return path, prefix


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _ClientGone(Exception):
    """The client went away while the directory app streamed a file."""


def _blocks(file: SeekableFile, size: int) -> Iterator[bytes]:
    """``size`` bytes of ``file`` in blocks; a file that shrank meanwhile cuts the response."""
    left = size
    while left:
        block = file.read(min(BLOCK, left))
        if not block:
            raise TruncatedBody(f"the file ended {left} bytes before its length")
        left -= len(block)
        yield block


async def _stream(found: FoundFile, size: int, receive: Receive, send: Send) -> None:
    """Send ``size`` bytes of ``found``, read in worker threads, until the client goes."""
    # send_chunks closes the file on every path, once a read still in its thread has returned.
    gone = asyncio.Event()

    async def listen() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    def check() -> None:
        if gone.is_set():
            raise _ClientGone

    listener = asyncio.ensure_future(listen())
    try:
        await send_chunks(send, _blocks(found.file, size), found, check)
    except _ClientGone:
        pass
    finally:
        listener.cancel()


def make_asgi_directory_app(root: str | os.PathLike[str]) -> ASGIApp:
    """An ASGI app serving files under ``root`` as plain ``200``s (it knows nothing of Range)."""
    # A file goes out as http.response.pathsend when the scope offers that extension (the
    # ASGI RangeMiddleware always does), else in blocks read in worker threads.
    top = Path(root).resolve()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # a websocket: refused (the server answers 403)
            await receive()
            await send({"type": "websocket.close", "code": 1000})
            return
        url_path, prefix = _url_path(scope)
        answer = await asyncio.to_thread(directory_answer, top, scope["method"], url_path,
                                         prefix)
        file = answer.file
        try:
            await send({"type": "http.response.start", "status": answer.code,
                        "headers": _headers(answer.fields)})
            if file is None:
                await send(body_message(answer.body, False))
            elif PATHSEND in (scope.get("extensions") or {}):
                await send({"type": PATHSEND, "path": file.name})
            else:
                found, file = FoundFile(file, 0, file.close, BLOCK), None  # closed by _stream
                await _stream(found, int(dict(answer.fields)["Content-Length"]), receive, send)
        finally:
            if file is not None:
                file.close()

    return app


# --- the request log ------------------------------------------------------------------------

def _target(scope: Scope) -> str:
    """The request target as the client sent it (path and query)."""
    raw = scope.get("raw_path")
    path = bytes(raw).decode("latin-1") if raw else quote(str(scope.get("path", "/")))
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    return f"{path}?{query}" if query else path


class _Request(NamedTuple):
    """What the log needs of a request's header fields."""

    range: str  # the Range field lines joined, ``-`` without one
    validators: list[str]  # the conditional fields a 304 answers, by name
    bodiless: bool  # no request body to read first


def _request_fields(scope: Scope) -> _Request:
    """The log's view of the request's header fields."""
    ranges: list[str] = []
    present: set[str] = set()
    bodiless = scope.get("http_version") in ("1.0", "1.1")
    for name, value in scope.get("headers") or ():
        name = bytes(name).lower()
        present.add(name.decode("latin-1"))
        if name == b"range":
            ranges.append(bytes(value).decode("latin-1"))
        elif name == b"transfer-encoding" or (name == b"content-length"
                                               and bytes(value).strip() != b"0"):
            bodiless = False
    validators = [name for name in VALIDATORS if name.lower() in present]
    return _Request(", ".join(ranges) or "-", validators, bodiless)


class _Watched:
    """One HTTP request: the app's messages passed on to the server, and noted."""

    def __init__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                 emit: Callable[[str], None], stopper: _Stopper | None = None) -> None:
        self.app = app
        self.scope = scope
        self.send_server = send
        self.stopper = stopper
        request = _request_fields(scope)
        # The one disconnect listener the middleware uses too: started at once for a request
        # without a body, else once the app has read the body.
        self.watcher = DisconnectWatcher(receive, self._disconnected)
        self.bodiless = request.bodiless
        self.exchange = Exchange(str(scope.get("method", "-")), _target(scope), request.range,
                                  emit, request.validators)
        self.started = False  # a response start went to the server
        self.final = False  # the message that completes the response went to the server
        self.trailers = False
        self.disconnected = False

    async def run(self) -> None:
        if self.bodiless:
            self.watcher.watch()
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception as error:
            self.exchange.error = describe(error)
            await self._answer_500()
            raise
        else:
            if not self.started and not self.disconnected:
                self.exchange.error = "the application returned without starting a response"
                await self._answer_500()
            elif not self.final and not self.disconnected:
                self.exchange.error = "the application returned before the end of the response"
        finally:
            self.watcher.close()
            self.exchange.finish()

    async def _answer_500(self) -> None:
        """Send the 500 the server would send for an app that failed before it started."""
        if self.started or self.disconnected:
            return
        await self.send({"type": "http.response.start", "status": 500, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21"),
            (b"connection", b"close")]})
        await self.send(body_message(b"Internal Server Error", False))

    # -- what goes to the server

    async def send(self, message: Message) -> None:
        """Pass ``message`` on to the server, noting the status, length and bytes sent."""
        kind = message["type"]
        exchange = self.exchange
        if kind == "http.response.start" and not self.started:
            self.started = True
            exchange.status = int(message["status"])
            self.trailers = bool(message.get("trailers", False))
            for name, value in message.get("headers") or ():
                if bytes(name).lower() == b"content-length":
                    exchange.header("content-length", bytes(value).decode("latin-1"))
            await self._to_server(message)
            exchange.headers_sent()
        elif kind == "http.response.body" and self.started:
            if self.watcher.watching and not self.disconnected:
                # A server that drops what is sent once its client has gone (uvicorn) never
                # makes ``send`` wait: a turn of the loop lets the listener hear it first.
                await asyncio.sleep(0)
            more_body = bool(message.get("more_body", False))
            self.final = not more_body and not self.trailers
            await self._to_server(message)
            exchange.sent(message.get("body", b""))
            if self.final:
                exchange.finish()
        elif kind == PATHSEND and self.started:
            self.final = True
            await self._to_server(message)
            if not exchange.logged and exchange.in_body:
                exchange.body += (exchange.length if exchange.length is not None
                                  else await asyncio.to_thread(_size, str(message["path"])))
            exchange.finish()
        elif kind == "http.response.trailers" and not message.get("more_trailers", False):
            self.final = True
            await self._to_server(message)
            exchange.finish()
        else:
            await self._to_server(message)

    async def _to_server(self, message: Message) -> None:
        try:
            await self.send_server(message)
        except OSError as error:
            if self.exchange.gone is None:
                self.exchange.gone = describe(error)
            raise

    # -- what the app is told

    async def receive(self) -> Message:
        """The server's messages; once the listener runs, as it heard them."""
        message = await self.watcher.receive()
        if self.watcher.body_read and not self.disconnected:
            self.watcher.watch()  # the body is read: listen for the disconnect meanwhile
        return message

    def _disconnected(self) -> None:
        """The client has gone (``http.disconnect``): noted once, for the log line."""
        if self.disconnected:
            return
        self.disconnected = True
        if not self.final and not self.exchange.logged:
            if self.stopper is not None and self.stopper.stopping:
                self.exchange.stopped = True
            else:
                self.exchange.gone = "http.disconnect"
            self.exchange.finish()


def _size(path: str) -> int:
    return os.stat(path).st_size


def logged(app: ASGIApp, stream: TextIO, stopper: _Stopper | None = None) -> ASGIApp:
    """``app``, writing one line per HTTP request to ``stream`` with what was really sent."""
    # With ``stopper``, a response that the stopping server ends says so, rather than that
    # its client went away.

    def emit(line: str) -> None:
        stream.write(line)
        stream.flush()

    async def logging_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        await _Watched(app, scope, receive, send, emit, stopper).run()

    return logging_app


# --- the server -----------------------------------------------------------------------------

def serve_asgi(app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, *,
               log: TextIO | None = None, sock: socket.socket | None = None) -> None:
    """Serve ``app`` with uvicorn until interrupted; print the URL."""
    # With ``log``, one line per request goes to it; uvicorn's own access log is off.
    # ``sock``: the socket from ``demo.bind_socket(host, port)``, else one is bound here.
    uvicorn = require_uvicorn()
    stopper = _Stopper()
    served: Callable[[Scope, Receive, Send], Awaitable[None]] = (
        app if log is None else logged(app, log, stopper))
    sock = sock or bind_socket(host, port)
    try:
        listen(sock, host, port)
        config: Any = uvicorn.Config(served, interface="asgi3", lifespan="auto",
                                     log_level="warning", access_log=False,
                                     proxy_headers=False, timeout_graceful_shutdown=_GRACE)
        server: Any = uvicorn.Server(config)
        stopper.attach(server)
        shown = f"[{host}]" if ":" in host else host
        print(f"rangewsgi demo serving on http://{shown}:{sock.getsockname()[1]}/ "
              f"(ASGI, uvicorn {uvicorn.__version__})", flush=True)
        def stop() -> None:
            server.should_exit = True  # uvicorn's graceful stop, as on SIGINT and SIGTERM

        with signals_noted(HANGUP, stop) as received:  # the others are uvicorn's own
            server.run(sockets=[sock])
        for signum in received:  # after the shutdown: the handler that was there before
            signal.raise_signal(signum)
    finally:
        sock.close()


class _Stopper:
    """Ends the responses still going out as soon as uvicorn starts to stop."""

    # uvicorn's graceful shutdown waits for every running response, and a media response runs
    # for as long as its client plays it (or holds it paused): a demo told to stop would wait
    # for the grace period, then cancel the response with an error and a traceback in the
    # log. Instead, the connections with a response under way are aborted when the shutdown
    # starts: the app hears ``http.disconnect`` and ends quietly, and the log says the server
    # stopped. Idle keep-alive connections are left to uvicorn, which closes them at once.
    # The connections are found through uvicorn's own state (``server_state.connections``,
    # each protocol's ``cycle`` and ``transport``, there since uvicorn 0.11); if a release
    # renames them, nothing is aborted and uvicorn's grace period (_GRACE) bounds the stop.

    def __init__(self) -> None:
        self.stopping = False

    def attach(self, server: Any) -> None:
        """Run ``stop`` first whenever ``server`` shuts down."""
        shutdown = server.shutdown

        async def stop_then_shutdown(sockets: Any = None) -> None:
            self.stop(server)
            await shutdown(sockets=sockets)

        server.shutdown = stop_then_shutdown

    def stop(self, server: Any) -> None:
        """Abort the connections of ``server`` whose response is under way."""
        self.stopping = True
        state = getattr(server, "server_state", None)
        for connection in list(getattr(state, "connections", ())):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if (cycle is not None and not getattr(cycle, "response_complete", True)
                    and transport is not None):
                transport.abort()
