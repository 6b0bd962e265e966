"""What both sides of ``python -m rangewsgi`` share: the directory listing and file fields,
the request log line, the listening socket and the stop signals.

Nothing here loads a server, a framework or an adapter: the WSGI side (``demo_wsgi``) and the
ASGI side (``asgi_demo``) import this module, never each other.
"""

from __future__ import annotations

import contextlib
import errno
import html
import inspect
import io
import mimetypes
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn
from urllib.parse import quote

from .httpdate import format_http_date

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

for _type, _ext in (("video/webm", ".webm"), ("audio/webm", ".weba"), ("audio/ogg", ".opus"),
                    ("audio/ogg", ".oga"), ("audio/mp4", ".m4a"), ("audio/flac", ".flac"),
                    ("audio/wav", ".wav"), ("video/mp4", ".mp4")):
    mimetypes.add_type(_type, _ext)

_VIDEO = {".mp4", ".webm", ".ogv", ".m4v", ".mov"}
_AUDIO = {".mp3", ".ogg", ".oga", ".opus", ".wav", ".flac", ".m4a", ".weba", ".aac"}
BLOCK = 64 * 1024


def _page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "video{width:100%;max-height:60vh;background:#000}audio{width:100%}"
        "li{margin:.6rem 0}code{background:#eee;padding:0 .2rem}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    ).encode()


def text_path(wsgi_path: str) -> str:
    """A PEP 3333 path (already percent-decoded, bytes as latin-1) as text, decoded once."""
    return wsgi_path.encode("latin-1").decode("utf-8", "surrogateescape")


def _url_path(text: str) -> str:
    """``text`` percent-encoded for a URL path: what ``text_path`` decodes back to ``text``."""
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


def _file_fields(target: Path, info: os.stat_result) -> list[tuple[str, str]]:
    """The header fields of a plain ``200`` for the file ``target``, opened, with ``info``."""
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return [
        ("Content-Type", content_type),
        ("Content-Length", str(info.st_size)),
        ("ETag", f'"{info.st_mtime_ns:x}-{info.st_size:x}"'),
        ("Last-Modified", format_http_date(info.st_mtime)),
        ("Cache-Control", "no-cache"),
    ]


class Answer(NamedTuple):
    """What the directory app sends: the status line, the header fields, and the body:
    ``body``, or for a ``200`` of a file to a ``GET``, the ``file`` itself (opened)."""

    status: str
    fields: list[tuple[str, str]]
    body: bytes = b""
    file: io.BufferedReader | None = None

    @property
    def code(self) -> int:
        return int(self.status[:3])


def error_answer(status: str, method: str) -> Answer:
    """An error with status line ``status``, its text as the body (none to a ``HEAD``)."""
    body = status.encode() + b"\n"
    return Answer(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                  body if method == "GET" else b"")


def directory_answer(top: Path, method: str, url_path: str, prefix: str) -> Answer:
    """The directory app's answer to ``method`` of ``url_path`` (text, decoded once) under
    ``top``, mounted at ``prefix``: what both the WSGI and the ASGI app send. It blocks
    (``stat``, ``open``)."""
    if method not in ("GET", "HEAD"):
        return Answer("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")])
    found = _locate(top, url_path, prefix)
    if isinstance(found, _Redirect):
        return Answer("301 Moved Permanently", [("Location", found.location),
                                                ("Content-Length", "0")])
    if isinstance(found, _Listing):
        return Answer("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                 ("Content-Length", str(len(found.page)))],
                      found.page if method == "GET" else b"")
    if isinstance(found, str):
        return error_answer(found, method)
    try:
        file = open(found, "rb")  # noqa: SIM115 - returned open, or closed here
    except OSError:
        return error_answer("404 Not Found", method)
    try:
        fields = _file_fields(found, os.fstat(file.fileno()))
    except OSError:
        file.close()
        return error_answer("404 Not Found", method)
    if method == "HEAD":
        file.close()
        return Answer("200 OK", fields)
    return Answer("200 OK", fields, file=file)


VALIDATORS = ("If-None-Match", "If-Modified-Since")  # what a 304 answers (RFC 9110 13.1)
_CONTROLS = str.maketrans({c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
                         | {ord("\\"): "\\\\"})


def _for_log(text: str) -> str:
    """``text`` kept on one ASCII log line: control and non-ASCII characters escaped."""
    return text.translate(_CONTROLS).encode("ascii", "backslashreplace").decode("ascii")


def describe(error: BaseException) -> str:
    """An exception as ``Type: message``, short enough for a log line."""
    message = str(error)
    return type(error).__name__ + (f": {message[:200]}" if message else "")


class Exchange:
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


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``, not yet listening (connections are refused until
    the server is ready); a one-line message and exit status 1 when that fails."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # an IPv6 literal has colons
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        cannot_listen(f"cannot listen on {host} port {port}: {error}; check --host")
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        not_bound(host, port, error)
    return sock


def listen(sock: socket.socket, host: str, port: int) -> None:
    """Start accepting connections on ``sock`` (bound to ``host``:``port``)."""
    try:
        sock.listen(2048)
    except OSError as error:
        sock.close()
        not_bound(host, port, error)


def not_bound(host: str, port: int, error: OSError) -> NoReturn:
    if error.errno == errno.EADDRINUSE:
        cannot_listen(f"port {port} on {host} is in use; choose another with --port")
    cannot_listen(f"cannot listen on {host} port {port}: {error.strerror or error}; "
                   "choose another with --port")


def cannot_listen(message: str) -> NoReturn:
    print(f"rangewsgi demo: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))
HANGUP = tuple(signum for signum in STOP_SIGNALS if signum.name == "SIGHUP")
_Handler = Callable[[int, "FrameType | None"], Any]


@contextlib.contextmanager
def _handled(handlers: dict[int, _Handler]) -> Iterator[None]:
    """While inside, ``handlers`` answer their signals; then the previous ones again. Only
    the main thread may set handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_noted(signums: Sequence[int] = STOP_SIGNALS,
                  then: Callable[[], object] | None = None) -> Iterator[list[int]]:
    """While inside, ``signums`` (SIGINT, SIGTERM and SIGHUP) are only listed, and ``then()``
    runs, whatever handler was inherited."""
    received: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if then is not None:
            then()

    with _handled(dict.fromkeys(signums, note)):
        yield received


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """Exit as a signal's default action would, but through ``finally`` blocks."""
    raise SystemExit(128 + signum)


def signals_exit() -> contextlib.AbstractContextManager[None]:
    """While inside, SIGINT raises KeyboardInterrupt, SIGTERM and SIGHUP exit: all three
    through ``finally`` blocks (the sample folder goes), whatever was inherited."""
    # CPython installs its SIGINT handler only when SIGINT is not ignored at start-up, and a
    # background job of a non-interactive shell (``cmd &``), or a child of any process that
    # ignores SIGINT, starts with it ignored: SIGINT then never stopped the demo.
    handlers: dict[int, _Handler] = dict.fromkeys(STOP_SIGNALS, _exit_on_signal)
    handlers[signal.SIGINT] = signal.default_int_handler
    return _handled(handlers)


MISSING_UVICORN = ("rangewsgi demo: serving an ASGI app needs uvicorn: "
                   "pip install 'rangewsgi[asgi]' (or pip install uvicorn)")


def require_uvicorn() -> ModuleType:
    """The ``uvicorn`` module; without it, a one-line message and exit status 2."""
    try:
        import uvicorn  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        print(MISSING_UVICORN, file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    module: ModuleType = uvicorn
    return module


def is_asgi_app(obj: object) -> bool:
    """Whether ``obj`` looks like an ASGI 3 app: a coroutine function, or one as ``__call__``."""
    # A class (its calls make awaitable instances) cannot be told from a WSGI app: --asgi.
    if isinstance(obj, type):
        return False
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - the method itself is inspected
    return call is not None and inspect.iscoroutinefunction(call)
