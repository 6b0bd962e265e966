"""The WSGI side of ``python -m rangewsgi``: a range-unaware directory app, werkzeug's
threaded server, and a request log of what really went onto each socket.

The directory app answers plain ``200``s (``Content-Length``, ``ETag``, ``Last-Modified``, its
body through ``wsgi.file_wrapper``) and knows nothing of Range, so every ``206`` seen comes
from ``rangewsgi.RangeMiddleware``.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO, cast

from werkzeug.serving import WSGIRequestHandler, make_server

from .demo_common import (
    BLOCK,
    VALIDATORS,
    Exchange,
    bind_socket,
    describe,
    directory_answer,
    error_answer,
    listen,
    signals_noted,
    text_path,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["make_directory_app", "serve"]

_LOG_LOCK = threading.Lock()
_EXCHANGE_KEY = "rangewsgi.demo.exchange"
_STOP_WAIT = 1.0  # seconds the stopping server waits for requests whose connection it ended
_POLL = 0.1  # seconds between the server loop's looks at whether it must stop


def make_directory_app(root: str | os.PathLike[str]) -> WSGIApplication:
    """A WSGI app serving files under ``root`` as plain ``200``s (it knows nothing of Range)."""
    top = Path(root).resolve()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        try:
            url_path = text_path(environ.get("PATH_INFO", ""))
            prefix = text_path(environ.get("SCRIPT_NAME", "")).rstrip("/")
        except UnicodeEncodeError:  # not a PEP 3333 string
            answer = error_answer("400 Bad Request", method)
        else:
            answer = directory_answer(top, method, url_path, prefix)
        start_response(answer.status, answer.fields)
        if answer.file is None:
            return [answer.body] if answer.body else []
        wrapper = environ.get("wsgi.file_wrapper")  # the server closes the file through it
        if wrapper is not None:
            return cast("Iterable[bytes]", wrapper(answer.file, BLOCK))
        return _read_all(answer.file)

    return app


def _read_all(file: Any) -> Iterable[bytes]:
    with file:
        while block := file.read(BLOCK):
            yield block


class _CountingWriter(io.BufferedIOBase):
    """The socket's writer, telling the current exchange what was written and what failed."""

    def __init__(self, raw: io.BufferedIOBase, handler: _LoggingHandler) -> None:
        super().__init__()
        self.raw = raw
        self.handler = handler

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        exchange = self.handler.exchange
        try:
            written = self.raw.write(data)
        except OSError as error:
            if exchange is not None and exchange.gone is None:
                exchange.gone = describe(error)
            raise
        if exchange is not None:
            exchange.sent(data)
        return written

    def flush(self) -> None:
        self.raw.flush()

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        try:
            super().close()  # flushes, while the socket's writer is still open
        finally:
            self.raw.close()


class _StoppableHandler(WSGIRequestHandler):
    """werkzeug's request handler, its connection ended at once when the server stops."""

    # werkzeug serves each connection in a daemon thread, which the process's exit would cut
    # wherever it is; ending the connections first lets each thread finish its request (and
    # its log line) and close its file.

    serving: ClassVar[dict[_StoppableHandler, threading.Thread]] = {}  # one per server class
    registry: ClassVar[threading.Lock] = threading.Lock()
    stopping = False

    def setup(self) -> None:
        super().setup()
        with self.registry:
            self.serving[self] = threading.current_thread()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.registry:
                self.serving.pop(self, None)

    def run_wsgi(self) -> None:
        # A request whose header block only the stop ended (http.server takes the end of the
        # stream for the blank line) is not served.
        if not self.stopping:
            super().run_wsgi()

    def stop(self) -> None:
        """End the connection: a read waiting for a request, or a write blocked by a client
        that reads no more, returns at once."""
        self.stopping = True
        self.close_connection = True
        with contextlib.suppress(OSError):  # already closed
            self.connection.shutdown(socket.SHUT_RDWR)

    @classmethod
    def stop_all(cls, wait: float) -> None:
        """End every connection served, and wait up to ``wait`` seconds for their threads."""
        with cls.registry:
            serving = dict(cls.serving)
        for handler in serving:
            handler.stop()
        deadline = time.monotonic() + wait
        for thread in serving.values():
            thread.join(max(0.0, deadline - time.monotonic()))


class _LoggingHandler(_StoppableHandler):
    """The request handler logging one line per request with what was really sent."""

    log_stream: ClassVar[TextIO] = sys.stderr
    exchange: Exchange | None = None

    def setup(self) -> None:
        super().setup()
        self.wfile = _CountingWriter(self.wfile, self)

    def stop(self) -> None:
        self.stopping = True  # before the exchange is looked at: see run_wsgi
        exchange = self.exchange
        if exchange is not None:
            exchange.stopped = True
        super().stop()

    def make_environ(self) -> WSGIEnvironment:
        environ = super().make_environ()
        environ[_EXCHANGE_KEY] = self.exchange
        return environ

    def run_wsgi(self) -> None:
        self.exchange = exchange = Exchange(
            self.command, self.path, ", ".join(self.headers.get_all("Range", [])) or "-",
            self._log_line, [name for name in VALIDATORS if name in self.headers])
        if self.stopping:  # stopped before this request ran: not served, not logged
            self.exchange = None
            return
        try:
            super().run_wsgi()
        finally:
            self.exchange = None
            exchange.finish()

    def _log_line(self, line: str) -> None:
        with _LOG_LOCK:  # one whole line per request, even from concurrent threads
            self.log_stream.write(line)
            self.log_stream.flush()

    def send_response_only(self, code: int, message: str | None = None) -> None:
        if self.exchange is not None and code >= 200:
            self.exchange.status = code
        super().send_response_only(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        if self.exchange is not None and not self.exchange.in_body:
            self.exchange.header(keyword, value)
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        super().end_headers()
        if self.exchange is not None:
            self.exchange.headers_sent()


def _watched(app: WSGIApplication) -> WSGIApplication:
    """``app``, noting in the request's exchange any exception it raises."""

    def watching_app(environ: WSGIEnvironment,
                     start_response: StartResponse) -> Iterable[bytes]:
        exchange: Exchange | None = environ.get(_EXCHANGE_KEY)
        if exchange is None:
            return app(environ, start_response)
        try:
            return _WatchedBody(app(environ, start_response), exchange)
        except Exception as error:
            exchange.error = describe(error)
            raise

    return watching_app


class _WatchedBody:
    """A response body passed through, noting an exception raised by iterating or closing it."""

    def __init__(self, body: Iterable[bytes], exchange: Exchange) -> None:
        self.body = body
        self.exchange = exchange
        self.iterator: Iterator[bytes] | None = None

    def __iter__(self) -> _WatchedBody:
        return self

    def __next__(self) -> bytes:
        try:
            if self.iterator is None:
                self.iterator = iter(self.body)
            return next(self.iterator)
        except StopIteration:
            raise
        except Exception as error:
            self.exchange.error = describe(error)
            raise

    def close(self) -> None:
        close: Callable[[], object] | None = getattr(self.body, "close", None)
        if close is None:
            return
        try:
            close()
        except Exception as error:
            if self.exchange.error is None:
                self.exchange.error = describe(error)
            raise


def serve(app: WSGIApplication, host: str = "127.0.0.1", port: int = 8000, *,
          log: TextIO | None = None, sock: socket.socket | None = None) -> None:
    """Serve ``app`` on werkzeug's threaded server until interrupted; print the URL."""
    # With ``log``, one line per request goes to it: method, request target, Range header,
    # then what the client was really sent: status, body bytes, and why it was cut short.
    # ``sock``: the socket from ``bind_socket(host, port)``, else one is bound here.
    handler: type[_StoppableHandler]
    if log is not None:
        stream: TextIO = log

        class LoggingHandler(_LoggingHandler):
            log_stream = stream
            serving: ClassVar[dict[_StoppableHandler, threading.Thread]] = {}

        handler = LoggingHandler
        app = _watched(app)
    else:
        class Handler(_StoppableHandler):
            serving: ClassVar[dict[_StoppableHandler, threading.Thread]] = {}

        handler = Handler
    with sock or bind_socket(host, port) as bound:
        listen(bound, host, port)
        port = bound.getsockname()[1]  # the port chosen for 0
        server = make_server(host, port, app, threaded=True, request_handler=handler,
                             fd=bound.fileno())  # werkzeug serves a duplicate of the socket
    shown = f"[{host}]" if ":" in host else host
    print(f"rangewsgi demo serving on http://{shown}:{port}/", flush=True)
    # The server loop runs in a thread of its own; this one waits, and the stop signals are
    # only noted while it does. An exception raised by a signal handler lands wherever this
    # thread happens to be: in Thread.start() it would leave the loop's thread running (and
    # the exit waiting for it forever), inside socketserver it would close a connection
    # under its request's thread. Once everything is stopped, the signal is raised again.
    ended = threading.Event()

    def accept() -> None:
        try:
            server.serve_forever(poll_interval=_POLL)
        finally:
            ended.set()

    accepting = threading.Thread(target=accept, name="rangewsgi-demo-accept")
    with signals_noted() as received:
        try:
            accepting.start()
            # Short steps: a signal that the kernel hands to another thread leaves this one
            # asleep, and Python runs its handler here only once the wait returns.
            while not received and not ended.wait(_POLL):
                pass
        finally:
            if accepting.ident is not None:
                server.shutdown()  # the loop ends within _POLL seconds
                accepting.join()
            server.server_close()
            handler.stop_all(_STOP_WAIT)
    with contextlib.suppress(KeyboardInterrupt):  # "until interrupted"
        for signum in received[:1]:  # with the handler that was there before
            signal.raise_signal(signum)
