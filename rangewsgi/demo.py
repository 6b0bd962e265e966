"""``python -m rangewsgi``: serve a directory or any WSGI app with byte ranges.

The directory app is deliberately range-unaware (a plain ``200`` with ``Content-Length``,
``ETag`` and ``Last-Modified``, its body through ``wsgi.file_wrapper``), so every ``206`` seen
comes from the middleware. ASGI apps, and ``--asgi``, are served with uvicorn (``asgi_demo``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import html
import importlib
import io
import logging
import math
import mimetypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, NoReturn, TextIO, cast
from urllib.parse import quote

from werkzeug.http import http_date
from werkzeug.serving import WSGIRequestHandler, make_server, select_address_family

from .middleware import RangeMiddleware

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["main", "make_directory_app", "serve"]

for _type, _ext in (("video/webm", ".webm"), ("audio/webm", ".weba"), ("audio/ogg", ".opus"),
                    ("audio/ogg", ".oga"), ("audio/mp4", ".m4a"), ("audio/flac", ".flac"),
                    ("audio/wav", ".wav"), ("video/mp4", ".mp4")):
    mimetypes.add_type(_type, _ext)

_VIDEO = {".mp4", ".webm", ".ogv", ".m4v", ".mov"}
_AUDIO = {".mp3", ".ogg", ".oga", ".opus", ".wav", ".flac", ".m4a", ".weba", ".aac"}
_BLOCK = 64 * 1024
_LOG_LOCK = threading.Lock()


def _page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "video{width:100%;max-height:60vh;background:#000}audio{width:100%}"
        "li{margin:.6rem 0}code{background:#eee;padding:0 .2rem}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    ).encode()


def _text_path(wsgi_path: str) -> str:
    """A PEP 3333 path (already percent-decoded, bytes as latin-1) as text, decoded once."""
    return wsgi_path.encode("latin-1").decode("utf-8", "surrogateescape")


def _url_path(text: str) -> str:
    """``text`` percent-encoded for a URL path: what ``_text_path`` decodes back to ``text``."""
    return quote(text.encode("utf-8", "surrogateescape"), safe="/")


def _shown(text: str) -> str:
    """``text`` for a page: bytes that are not UTF-8 in a file name become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _listing(root: Path, directory: Path, base: str) -> bytes:
    """The index page of ``directory``; ``base`` is its URL path as text, ending in ``/``."""
    items = []
    if directory != root:
        items.append('<li><a href="../">../</a></li>')
    for entry in sorted(directory.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower())):
        try:
            is_file = entry.is_file()
            name = entry.name + ("/" if entry.is_dir() else "")
            size = f" <small>({entry.stat().st_size:,} bytes)</small>" if is_file else ""
        except OSError:  # gone or unreadable since iterdir()
            continue
        href = html.escape(_url_path(base + name))
        label = html.escape(_shown(name))
        suffix = entry.suffix.lower()
        player = ""
        if is_file and suffix in _VIDEO:
            player = f'<br><video controls preload="metadata" src="{href}"></video>'
        elif is_file and suffix in _AUDIO:
            player = f'<br><audio controls preload="metadata" src="{href}"></audio>'
        items.append(f'<li><a href="{href}">{label}</a>{size}{player}</li>')
    note = ("<p>Served by a range-unaware file app. Seek in a player: the server log shows "
            "each <code>Range</code> request and its status.</p>")
    return _page(f"Index of {_shown(base)}", note + "<ul>" + "".join(items) + "</ul>")


class _Redirect(NamedTuple):
    """A directory named without its final slash: where to send the client (a 301)."""

    location: str


class _Listing(NamedTuple):
    """A directory's index page."""

    page: bytes


def _locate(top: Path, url_path: str, prefix: str) -> str | _Redirect | _Listing | Path:
    """What ``url_path`` (text, decoded once) names under ``top``, mounted at ``prefix``."""
    # A regular file inside ``top`` (symbolic links resolved) as its path; a directory as its
    # listing or a redirect; anything else as the status line of the error to send.
    if "\0" in url_path:
        return "400 Bad Request"
    relative = url_path.lstrip("/")
    try:
        target = (top / relative).resolve()
        if target != top and top not in target.parents:
            return "404 Not Found"
        is_dir = target.is_dir()
    except (OSError, ValueError):  # a name too long, a loop of links, ...
        return "404 Not Found"
    # One leading slash only: "//name/" in a Location or link would name another host.
    base = f"{prefix}/{relative}"
    if is_dir:
        if not url_path.endswith("/"):
            return _Redirect(_url_path(base if base.endswith("/") else base + "/"))
        try:
            return _Listing(_listing(top, target, base))
        except OSError:
            return "404 Not Found"
    try:
        if not target.is_file():  # also no FIFO or device: opening one could block
            return "404 Not Found"
    except OSError:
        return "404 Not Found"
    return target


def _file_headers(target: Path, info: os.stat_result) -> list[tuple[str, str]]:
    """The header fields of a plain ``200`` for the file ``target``, opened, with ``info``."""
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return [
        ("Content-Type", content_type),
        ("Content-Length", str(info.st_size)),
        ("ETag", f'"{info.st_mtime_ns:x}-{info.st_size:x}"'),
        ("Last-Modified", http_date(info.st_mtime)),
        ("Cache-Control", "no-cache"),
    ]


def make_directory_app(root: str | os.PathLike[str]) -> WSGIApplication:
    """A WSGI app serving files under ``root`` as plain ``200``s (it knows nothing of Range)."""
    top = Path(root).resolve()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"),
                                                      ("Content-Length", "0")])
            return []
        try:
            url_path = _text_path(environ.get("PATH_INFO", ""))
            prefix = _text_path(environ.get("SCRIPT_NAME", "")).rstrip("/")
        except UnicodeEncodeError:  # not a PEP 3333 string
            return _error(start_response, "400 Bad Request")
        found = _locate(top, url_path, prefix)
        if isinstance(found, str):
            return _error(start_response, found)
        if isinstance(found, _Redirect):
            start_response("301 Moved Permanently",
                           [("Location", found.location), ("Content-Length", "0")])
            return []
        if isinstance(found, _Listing):
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(len(found.page)))])
            return [found.page] if method == "GET" else []
        try:
            file = open(found, "rb")  # noqa: SIM115 - closed by the server through the wrapper
        except OSError:
            return _error(start_response, "404 Not Found")
        start_response("200 OK", _file_headers(found, os.fstat(file.fileno())))
        if method == "HEAD":
            file.close()
            return []
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return cast("Iterable[bytes]", wrapper(file, _BLOCK))
        return _read_all(file)

    return app


def _read_all(file: Any) -> Iterable[bytes]:
    with file:
        while block := file.read(_BLOCK):
            yield block


def _error_response(status: str) -> tuple[list[tuple[str, str]], bytes]:
    """The header fields and body of an error answer with status line ``status``."""
    body = status.encode() + b"\n"
    return [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], body


def _error(start_response: StartResponse, status: str) -> list[bytes]:
    headers, body = _error_response(status)
    start_response(status, headers)
    return [body]


_EXCHANGE_KEY = "rangewsgi.demo.exchange"
_STOP_WAIT = 1.0  # seconds the stopping server waits for requests whose connection it ended
_POLL = 0.1  # seconds between the server loop's looks at whether it must stop
_VALIDATORS = ("If-None-Match", "If-Modified-Since")  # what a 304 answers (RFC 9110 13.1)
_CONTROLS = str.maketrans({c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
                         | {ord("\\"): "\\\\"})


def _for_log(text: str) -> str:
    """``text`` kept on one ASCII log line: control and non-ASCII characters escaped."""
    return text.translate(_CONTROLS).encode("ascii", "backslashreplace").decode("ascii")


def _describe(error: BaseException) -> str:
    """An exception as ``Type: message``, short enough for a log line."""
    message = str(error)
    return type(error).__name__ + (f": {message[:200]}" if message else "")


class _Exchange:
    """What the client of one request was really sent, as the bytes went onto the socket."""

    # The log line is written once this is final: as soon as the last byte the response's
    # framing calls for is sent, or else when the server is done with the request (the
    # application raised, the client went away, the body was cut short).

    def __init__(self, method: str, target: str, range_header: str,
                 emit: Callable[[str], None], validators: Sequence[str] = ()) -> None:
        self.method = method
        self.target = target
        self.range = range_header
        self.validators = validators  # the conditional header fields the request carried
        self.emit = emit
        self.logged = False
        self.status: int | None = None
        self.length: int | None = None  # the Content-Length sent, when the body must match it
        self.chunked = False
        self.in_body = False
        self.body = 0
        self.error: str | None = None  # the application raised (calling, iterating, closing)
        self.gone: str | None = None  # a write to the client failed
        self.stopped = False  # the server stopped while the response was going out
        self._left = 0  # chunked framing: payload bytes left in the current chunk ...
        self._skip = 0  # ... the CRLF after it still to come ...
        self._size = b""  # ... and the chunk-size line read so far
        self._last_chunk = False

    def header(self, name: str, value: str) -> None:
        """Note a header of the response as it is sent."""
        name = name.lower()
        if name == "transfer-encoding":
            self.chunked = "chunked" in value.lower()
        elif (name == "content-length" and value.strip().isdigit() and self.method != "HEAD"
              and self.status not in (204, 304)):
            self.length = int(value)

    def headers_sent(self) -> None:
        """The status line and headers are out: the body starts."""
        if self.status is not None:
            self.in_body = True
            self._finish_if_complete()

    def sent(self, data: ReadableBuffer) -> None:
        """Count the body bytes among ``data``, just written to the socket."""
        if not self.in_body or self.logged:
            return
        if self.chunked:
            self._unchunk(bytes(data))
        else:
            self.body += memoryview(data).nbytes
        self._finish_if_complete()

    def _unchunk(self, raw: bytes) -> None:
        """Count the payload bytes of chunked framing."""
        i = 0
        while i < len(raw) and not self._last_chunk:
            if self._left:  # payload
                step = min(self._left, len(raw) - i)
                self.body += step
                self._left -= step
                self._skip = 0 if self._left else 2
            elif self._skip:  # the CRLF after a chunk's payload
                step = min(self._skip, len(raw) - i)
                self._skip -= step
            else:  # a chunk-size line
                line_end = raw.find(b"\n", i)
                if line_end < 0:
                    self._size += raw[i:]
                    break
                size, self._size = self._size + raw[i:line_end], b""
                step = line_end + 1 - i
                try:
                    self._left = int(size.split(b";")[0], 16)
                except ValueError:
                    self._left = 0
                self._last_chunk = not self._left
            i += step

    def _finish_if_complete(self) -> None:
        if self.length is not None:
            complete = self.body >= self.length
        elif self.chunked:
            complete = self._last_chunk
        else:  # no body, or one that only the end of the connection ends
            complete = self.method == "HEAD" or self.status in (204, 304)
        if complete:
            self.finish()

    def finish(self) -> None:
        """Write the log line, once."""
        if not self.logged:
            self.logged = True
            self.emit(self.line())

    def line(self) -> str:
        """The log line: request, then the status, body bytes and outcome actually sent."""
        sent = f"{self.body} bytes"
        if self.length is not None and self.body != self.length:
            sent = f"{self.body} of {self.length} bytes"
        elif self.chunked and not self._last_chunk:
            sent = f"{self.body} bytes, no last chunk"
        status = "-" if self.status is None else str(self.status)
        return _for_log(f"{self.method} {self.target} Range={self.range} -> {status} "
                        f"{sent}{self._outcome()}") + "\n"

    def _short(self) -> bool:
        """Whether the response is not (yet) all sent."""
        if self.status is None:
            return True
        if self.length is not None:
            return self.body < self.length
        return self.chunked and not self._last_chunk

    def _outcome(self) -> str:
        """How the response ended, when that needs saying."""
        if self.error is not None:  # the application failed: a real error
            return f", aborted: {self.error}"
        if self.stopped and self._short():
            return ", stopped with the server"
        if self.gone is not None:
            # A media player closes the connection when it seeks or has buffered enough:
            # ordinary, not an error.
            return f", client stopped reading after {self.body} bytes"
        if self.status == 304 and self.range != "-":
            # RFC 9110 13.2.2: If-None-Match (or If-Modified-Since) is evaluated before Range;
            # the client's copy is current, so it gets no range and no body.
            sent = " and ".join(self.validators) or "a validator"
            return (f", not modified: the client sent {sent} and its cached copy is current, "
                    "so no range was needed")
        return ""


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
                exchange.gone = _describe(error)
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
    exchange: _Exchange | None = None

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
        self.exchange = exchange = _Exchange(
            self.command, self.path, ", ".join(self.headers.get_all("Range", [])) or "-",
            self._log_line, [name for name in _VALIDATORS if name in self.headers])
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
        exchange: _Exchange | None = environ.get(_EXCHANGE_KEY)
        if exchange is None:
            return app(environ, start_response)
        try:
            return _WatchedBody(app(environ, start_response), exchange)
        except Exception as error:
            exchange.error = _describe(error)
            raise

    return watching_app


class _WatchedBody:
    """A response body passed through, noting an exception raised by iterating or closing it."""

    def __init__(self, body: Iterable[bytes], exchange: _Exchange) -> None:
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
            self.exchange.error = _describe(error)
            raise

    def close(self) -> None:
        close: Callable[[], object] | None = getattr(self.body, "close", None)
        if close is None:
            return
        try:
            close()
        except Exception as error:
            if self.exchange.error is None:
                self.exchange.error = _describe(error)
            raise


def write_sample(directory: Path, minutes: int = 10) -> Path:
    """Write a WAV tone sweep long enough that seeking sends mid-file Range requests."""
    rate = 8000
    path = directory / "sweep.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        second = bytearray()
        for minute in range(minutes):
            pitch = 220 * 2 ** (minute / 4)
            second.clear()
            for i in range(rate):
                value = int(9000 * math.sin(2 * math.pi * pitch * i / rate))
                second += value.to_bytes(2, "little", signed=True)
            out.writeframes(bytes(second) * 60)
    return path


def write_sample_video(directory: Path, seconds: int = 30) -> Path | None:
    """Write a WebM test card with a tone (VP9 and Opus) made by ffmpeg from its own
    generators, no input and no network; None, with a note on stderr, without ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    path = directory / "testcard.webm"
    if ffmpeg is None:
        print("rangewsgi demo: ffmpeg not found, so --sample serves audio only "
              "(apt-get install ffmpeg for the video)", file=sys.stderr, flush=True)
        return None
    cmd = [ffmpeg, "-v", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=24:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
           "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k",
           "-c:a", "libopus", "-b:a", "48k", "-shortest", str(path)]
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        print(f"rangewsgi demo: ffmpeg could not make the sample video "
              f"({done.stderr.decode(errors='replace').strip()[:200]}); serving audio only",
              file=sys.stderr, flush=True)
        path.unlink(missing_ok=True)
        return None
    return path


def _import_app(spec: str) -> WSGIApplication:
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in (attr or "application").split("."):
        obj = getattr(obj, part)
    return cast("WSGIApplication", obj)


def _load_app(spec: str, debug: bool) -> WSGIApplication:
    """The app ``spec`` names; when it cannot be imported, one line naming the error and exit
    status 1 (``debug``: the whole traceback)."""
    try:
        return _import_app(spec)
    except Exception as error:
        if debug:
            raise
        reason = " ".join(_describe(error).split())  # one line, whatever the message holds
        print(f"rangewsgi demo: cannot import app {spec!r}: {reason} (--debug shows the "
              "traceback)", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def _positive(text: str) -> int:
    """An argparse type: an integer of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


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
    with _signals_noted() as received:
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


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``, not yet listening (connections are refused until
    the server is ready); a one-line message and exit status 1 when that fails."""
    family = select_address_family(host, port)  # as werkzeug's own server would choose
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        _cannot_listen(f"cannot listen on {host} port {port}: {error}; check --host")
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        _not_bound(host, port, error)
    return sock


def listen(sock: socket.socket, host: str, port: int) -> None:
    """Start accepting connections on ``sock`` (bound to ``host``:``port``)."""
    try:
        sock.listen(2048)
    except OSError as error:
        sock.close()
        _not_bound(host, port, error)


def _not_bound(host: str, port: int, error: OSError) -> NoReturn:
    if error.errno == errno.EADDRINUSE:
        _cannot_listen(f"port {port} on {host} is in use; choose another with --port")
    _cannot_listen(f"cannot listen on {host} port {port}: {error.strerror or error}; "
                   "choose another with --port")


def _cannot_listen(message: str) -> NoReturn:
    print(f"rangewsgi demo: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                      if hasattr(signal, name))


@contextlib.contextmanager
def _signals_noted() -> Iterator[list[int]]:
    """While inside, SIGINT, SIGTERM and SIGHUP are only listed (whatever was inherited)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in _STOP_SIGNALS}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """Exit as a signal's default action would, but through ``finally`` blocks."""
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _signals_exit() -> Iterator[None]:
    """While inside, SIGINT raises KeyboardInterrupt, SIGTERM and SIGHUP exit: all three
    through ``finally`` blocks (the sample folder goes), whatever was inherited."""
    # CPython installs its SIGINT handler only when SIGINT is not ignored at start-up, and a
    # background job of a non-interactive shell (``cmd &``), or a child of any process that
    # ignores SIGINT, starts with it ignored: SIGINT then never stopped the demo.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers: dict[int, Callable[[int, FrameType | None], Any]] = {
        signum: _exit_on_signal for signum in _STOP_SIGNALS}
    handlers[signal.SIGINT] = signal.default_int_handler
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _prog() -> str | None:
    """``python -m rangewsgi`` when run so; else None: argparse names the script run."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name == f"{__package__}.__main__":
        return f"python -m {__package__}"
    return None


def _serve_asgi(args: argparse.Namespace, inner: object | None, sock: socket.socket) -> None:
    """Serve ``module:app`` (``inner``), else the target directory, as ASGI with uvicorn."""
    from . import asgi, asgi_demo

    app = (asgi_demo.make_asgi_directory_app(args.target) if inner is None
           else cast("asgi.ASGIApp", inner))
    if not args.no_ranges:
        app = asgi.RangeMiddleware(app, max_ranges=args.max_ranges)
    asgi_demo.serve_asgi(app, args.host, args.port, log=None if args.quiet else sys.stderr,
                         sock=sock)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: serve a directory, a module:app or ``--sample`` until interrupted."""
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Serve a directory (through a range-unaware file app) or any WSGI or ASGI "
                    "app (module:attribute) wrapped in RangeMiddleware.")
    parser.add_argument("target", nargs="?", default=".",
                        help="a directory to serve, or module:app to wrap (default: .)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any)")
    parser.add_argument("--max-ranges", type=_positive, default=100,
                        help="range-specs above this are ignored (default 100; at least 1)")
    parser.add_argument("--no-ranges", action="store_true",
                        help="serve without the middleware, to see what clients do without it")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    parser.add_argument("--asgi", action="store_true",
                        help="serve with uvicorn and the ASGI middleware: a directory through a "
                             "range-unaware ASGI file app, or module:app as an ASGI app (found "
                             "without this flag when it is a coroutine function or an object "
                             "whose __call__ is one); needs uvicorn")
    parser.add_argument("--sample", action="store_true",
                        help="serve a generated 10-minute WAV tone sweep and, with ffmpeg, a "
                             "30-second WebM test card (no target needed); deleted on exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the whole traceback when module:app cannot be imported")
    args = parser.parse_args(argv)
    if args.asgi:
        from .asgi_demo import require_uvicorn
        require_uvicorn()  # before any sample is made
    with _signals_exit(), contextlib.ExitStack() as cleanup, \
            contextlib.suppress(KeyboardInterrupt):
        # The port first: a busy one is reported before any sample is made.
        sock = cleanup.enter_context(bind_socket(args.host, args.port))
        if args.sample:
            args.target = cleanup.enter_context(tempfile.TemporaryDirectory(
                prefix="rangewsgi-sample-", ignore_cleanup_errors=True))
            write_sample(Path(args.target))
            write_sample_video(Path(args.target))
        if ":" in args.target and not Path(args.target).is_dir():
            sys.path.insert(0, os.getcwd())
            inner = _load_app(args.target, args.debug)
            if not args.asgi:
                from .asgi_demo import is_asgi_app
                args.asgi = is_asgi_app(inner)
            if args.asgi:
                _serve_asgi(args, inner, sock)
                return
        elif args.asgi and Path(args.target).is_dir():
            _serve_asgi(args, None, sock)
            return
        elif Path(args.target).is_dir():
            inner = make_directory_app(args.target)
        else:
            parser.error(f"{args.target!r} is neither a directory nor module:app")
        app = inner if args.no_ranges else RangeMiddleware(inner, max_ranges=args.max_ranges)
        # The request log replaces werkzeug's own access log (it also shows Range).
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        serve(app, args.host, args.port, log=None if args.quiet else sys.stderr, sock=sock)
