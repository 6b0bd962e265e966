"""Faults: bodies that raise, clients that hang up, files that shrink under the response.

PEP 3333 and RFC 9112 section 6.3 / 9110 section 8.6 together say what must happen:

- an error before the headers are sent reaches the server, which answers 500, and the inner
  iterable's ``close()`` still runs exactly once;
- after the headers, a response can only be aborted: the client must see fewer bytes than the
  ``Content-Length`` and then the end of the connection, never a complete-looking body;
- a client that goes away mid-transfer costs nothing: ``close()`` runs and the file is closed,
  so the worker's descriptor count (``/proc/PID/fd``) stays flat over many hang-ups;
- a file that is shorter than the length taken from it is never padded or relabelled.

The WSGI application that the real servers load is ``fault_app`` in this module.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import wsgiref.util
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from server_configs.launch import gunicorn_cmd
from support import HOST, RawClient, Server, free_port, parse_multipart, start_server
from wsgi_exchange import (
    CountingBody,
    StartResponse,
    data_for,
    environ_for,
    serve,
)

from rangewsgi import RangeMiddleware
from rangewsgi.files import TruncatedBody

FILE_ENV = "RANGEWSGI_FAULT_FILE"
BIG = 4 * 1024 * 1024  # larger than the socket buffers, so a hang-up lands mid-transfer
CHUNK = 64 * 1024

# --- the application the servers load ----------------------------------------------------------

_lock = threading.Lock()
_opened = 0
_closed = 0
_closed_again = 0  # close() calls on an iterable already closed (PEP 3333: exactly once)


def _count(opened: int = 0, closed: int = 0, again: int = 0) -> None:
    global _opened, _closed, _closed_again
    with _lock:
        _opened += opened
        _closed += closed
        _closed_again += again


class TrackedFile(io.FileIO):
    """A real file whose opening and closing are counted (close() counts once)."""

    def __init__(self, path: str | Path, on_first_use: Callable[[], None] | None = None,
                 ) -> None:
        super().__init__(path, "rb")
        _count(opened=1)
        self.on_first_use = on_first_use
        self.fileno_calls = 0

    def close(self) -> None:
        if not self.closed:
            _count(closed=1)
        super().close()

    def _first_use(self) -> None:
        hook, self.on_first_use = self.on_first_use, None
        if hook is not None:
            hook()

    def fileno(self) -> int:
        # The middleware measures the file once (fstat); a later fileno() is the server
        # starting the transfer (gunicorn's sendfile).
        self.fileno_calls += 1
        if self.fileno_calls > 1:
            self._first_use()
        return super().fileno()

    def read(self, size: int | None = -1, /) -> bytes:
        self._first_use()
        return super().read(size)

    def readinto(self, buffer: Any, /) -> int | None:
        self._first_use()
        return super().readinto(buffer)


class TrackedBody:
    """An iterable body that yields ``chunks`` and then optionally raises; close() counted."""

    def __init__(self, chunks: Iterable[bytes], fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.closes = 0
        _count(opened=1)

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.chunks:
            if self.fail_after is not None and sent >= self.fail_after:
                break
            sent += len(chunk)
            yield chunk
        if self.fail_after is not None:
            raise RuntimeError("the body failed")

    def close(self) -> None:
        self.closes += 1
        if self.closes == 1:
            _count(closed=1)
        else:
            _count(again=1)


def _source() -> Path:
    return Path(os.environ[FILE_ENV])


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            yield block


def _shrinking_copy() -> tuple[Path, Callable[[], None]]:
    """A private copy of the data file, and a function that cuts it to half its size."""
    fd, name = tempfile.mkstemp(prefix="rangewsgi-shrink-")
    os.close(fd)
    shutil.copyfile(_source(), name)
    size = os.path.getsize(name)

    def shrink() -> None:
        os.truncate(name, size // 2)
        os.unlink(name)

    return Path(name), shrink


def plain_fault_app(environ: dict[str, Any], start_response: StartResponse) -> Any:
    route = environ.get("PATH_INFO", "")
    path = _source()
    size = path.stat().st_size
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
    if route == "/stats":
        body = json.dumps({"pid": os.getpid(), "opened": _opened, "closed": _closed,
                           "closed_again": _closed_again,
                           "fds": len(os.listdir("/proc/self/fd"))}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store")])
        return [body]
    if route == "/raise-in-app":
        raise RuntimeError("the application failed")
    if route == "/raise-before-start":
        def late() -> Iterator[bytes]:
            raise RuntimeError("failed before start_response")
            yield b""  # pragma: no cover
        return TrackedBody(late())
    if route == "/raise-before":
        start_response("200 OK", headers)
        return TrackedBody(_chunks(path), fail_after=0)
    if route == "/raise-after":
        start_response("200 OK", headers)
        return TrackedBody(_chunks(path), fail_after=size // 2)
    if route == "/gen":
        start_response("200 OK", headers)
        return TrackedBody(_chunks(path))
    if route == "/file":
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](TrackedFile(path), CHUNK)
    if route in ("/shrink-before", "/shrink-during"):
        copy, shrink = _shrinking_copy()
        if route == "/shrink-before":
            fh = TrackedFile(copy)
            shrink()  # after the application took the length, before the middleware looks
        else:
            fh = TrackedFile(copy, shrink)  # once the server starts the transfer
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](fh, CHUNK)
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


fault_app = RangeMiddleware(plain_fault_app)


# --- in-process: close() exactly once on every path -------------------------------------------


def counting_app(body: CountingBody, length: int) -> Any:
    def app(environ: dict[str, Any], start_response: StartResponse) -> CountingBody:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(length))])
        return body
    return app


def ignore_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None,
                 /) -> Callable[[bytes], object]:
    """A start_response for tests that only iterate the body."""
    return len


def raising(data: bytes, after: int) -> Iterator[bytes]:
    yield data[:after]
    raise RuntimeError("the body failed")


@pytest.mark.parametrize("range_value", [None, "bytes=5-9", "bytes=0-1,50-60", "bytes=500-",
                                         "bytes=x", "bytes=-0"])
def test_close_once_on_success_and_416(range_value: str | None) -> None:
    data = data_for(100)
    body = CountingBody([data[:40], data[40:]])
    served = serve(RangeMiddleware(counting_app(body, 100)), environ_for("GET", range_value))
    assert served.code in (200, 206, 416)
    assert body.closes == 1


@pytest.mark.parametrize("range_value", [None, "bytes=50-59", "bytes=0-1,50-60", "bytes=20-",
                                         "bytes=5-9"])
def test_close_once_when_the_body_raises(range_value: str | None) -> None:
    """The body raises after 30 bytes; a range inside them is complete before that."""
    data = data_for(100)
    body = CountingBody(raising(data, 30))
    result = RangeMiddleware(counting_app(body, 100))(environ_for("GET", range_value),
                                                       ignore_start)
    got = b""
    try:
        for chunk in result:
            got += chunk
    except RuntimeError as exc:
        assert str(exc) == "the body failed"
        assert range_value != "bytes=5-9"
        assert len(got) < 30 + 200  # never the whole declared length
    else:
        # Every needed byte arrived before the failure: reading stopped there (bodies.py).
        assert range_value == "bytes=5-9" and got == data[5:10]
    finally:
        result.close()  # type: ignore[attr-defined]
    assert body.closes == 1


def test_close_once_when_the_app_fails_before_start_response() -> None:
    def gen() -> Iterator[bytes]:
        raise RuntimeError("no headers")
        yield b""  # pragma: no cover

    body = CountingBody(gen())

    def app(environ: dict[str, Any], start_response: StartResponse) -> CountingBody:
        return body  # start_response would come with the first chunk

    with pytest.raises(RuntimeError, match="no headers"):
        RangeMiddleware(app)(environ_for("GET", "bytes=0-1"), ignore_start)
    assert body.closes == 1


@pytest.mark.parametrize("range_value", [None, "bytes=5-9", "bytes=0-1,5000-6000", "bytes=-10"])
@pytest.mark.parametrize("kind", ["list", "file"])
def test_close_once_on_hang_up(range_value: str | None, kind: str, tmp_path: Path) -> None:
    """The server stops iterating after one chunk (client gone) and calls close()."""
    data = data_for(100_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    closes: list[int] = []

    class Counted(io.FileIO):
        def close(self) -> None:
            closes.append(1)
            super().close()

    body = CountingBody([data[i:i + 1000] for i in range(0, len(data), 1000)])

    def app(environ: dict[str, Any], start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Length", str(len(data)))])
        if kind == "file":
            return environ["wsgi.file_wrapper"](Counted(path), 1000)
        return body

    result = RangeMiddleware(app)(
        environ_for("GET", range_value, server_wrapper=wsgiref.util.FileWrapper),
        ignore_start)
    next(iter(result))
    result.close()  # type: ignore[attr-defined]
    if range_value is not None:
        result.close()  # type: ignore[attr-defined]  # a second close() stays with us
    assert (sum(closes) if kind == "file" else body.closes) == 1


def test_short_stream_raises_truncated_body() -> None:
    """A body shorter than its Content-Length never becomes a complete-looking 206."""
    data = data_for(100)
    for value in ("bytes=50-", "bytes=0-1,80-99", "bytes=-10"):
        body = CountingBody([data[:60]])  # 40 bytes missing
        with pytest.raises(TruncatedBody):
            serve(RangeMiddleware(counting_app(body, 100)), environ_for("GET", value))
        assert body.closes == 1


# --- real servers ------------------------------------------------------------------------------

SERVERS = ["gunicorn-gthread", "gunicorn-sync", "waitress"]


def start_fault_server(name: str, workdir: Path, size: int = BIG) -> tuple[Server, bytes]:
    data = data_for(size)
    path = workdir / "data.bin"
    path.write_bytes(data)
    port = free_port()
    spec = "test_faults:fault_app"
    if name.startswith("gunicorn-"):
        cmd = gunicorn_cmd(port, name.removeprefix("gunicorn-"), spec, ["--timeout", "30"])
    else:
        cmd = [sys.executable, "-m", "waitress", f"--listen={HOST}:{port}", "--threads=4",
               spec]
    server = start_server(cmd, port, env={FILE_ENV: str(path)}, cwd=workdir,
                          log_path=workdir / f"{name}.log")
    return server, data


def stats(server: Server) -> dict[str, int]:
    with RawClient(server.port, timeout=10) as client:
        resp = client.request("/stats", {"Connection": "close"})
    assert resp.status == 200
    return json.loads(resp.body)  # type: ignore[no-any-return]


def settled(server: Server, timeout: float = 15.0) -> dict[str, int]:
    """Stats once every opened body is closed (bounded wait: servers close asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        now = stats(server)
        # The /stats request itself is not counted: only bodies and files are.
        if now["opened"] == now["closed"] or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def read_to_eof(port: int, path: str, headers: dict[str, str],
                timeout: float = 20.0) -> tuple[bytes, list[tuple[str, str]], bytes]:
    """One keep-alive request: (status line, headers, body) read until the body is complete
    by its Content-Length or the server closes the connection (an aborted transfer).

    The bound turns a server that neither finishes nor closes into a failure.
    """
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    raw = b""
    declared: int | None = None
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if declared is None and b"\r\n\r\n" in raw:
                first = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
                declared = int(header(_fields(first), "Content-Length") or -1)
            if declared is not None and declared >= 0 and \
                    len(raw.split(b"\r\n\r\n", 1)[1]) >= declared:
                break
            try:
                chunk = sock.recv(1 << 16)
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
        else:
            pytest.fail(f"the server neither finished nor closed within {timeout}s")
    head, _, body = raw.partition(b"\r\n\r\n")
    status, _, _ = head.decode("latin-1").partition("\r\n")
    return status.encode(), _fields(head.decode("latin-1")), body


def _fields(head: str) -> list[tuple[str, str]]:
    return [(k.strip(), v.strip()) for k, _, v in
            (line.partition(":") for line in head.split("\r\n")[1:])]


def header(fields: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in fields if k.lower() == name.lower()), None)


@pytest.fixture(scope="module", params=SERVERS)
def fault_server(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server, bytes]]:
    name: str = request.param
    server, data = start_fault_server(name, tmp_path_factory.mktemp(name))
    try:
        yield name, server, data
    finally:
        server.stop()


def assert_clean(server: Server) -> None:
    now = settled(server)
    assert now["opened"] == now["closed"], now
    assert now["closed_again"] == 0, now


@pytest.mark.network
@pytest.mark.parametrize("route", ["/raise-in-app", "/raise-before-start", "/raise-before"])
@pytest.mark.parametrize("range_value", [None, "bytes=10-19", "bytes=0-9,100-109"])
def test_error_before_headers_is_a_500(fault_server: tuple[str, Server, bytes], route: str,
                                       range_value: str | None) -> None:
    """The exception reaches the server, which still has its headers to send: 500."""
    _, server, _ = fault_server
    headers = {} if range_value is None else {"Range": range_value}
    with RawClient(server.port, timeout=20) as client:
        resp = client.request(route, headers)
    assert resp.status == 500
    assert resp.header("Content-Range") is None
    assert_clean(server)


@pytest.mark.network
@pytest.mark.parametrize("range_value", [None, "bytes=0-", "bytes=1000-", "bytes=0-9,1000-"])
def test_error_after_headers_aborts(fault_server: tuple[str, Server, bytes],
                                    range_value: str | None) -> None:
    """Fewer bytes than Content-Length, then EOF; the bytes sent are the right ones."""
    _, server, data = fault_server
    headers = {} if range_value is None else {"Range": range_value}
    status, fields, body = read_to_eof(server.port, "/raise-after", headers)
    declared = header(fields, "Content-Length")
    assert declared is not None, (status, fields)
    assert len(body) < int(declared), (status, len(body), declared)
    if status.startswith(b"HTTP/1.1 200"):
        assert range_value is None
        assert body == data[:len(body)]
    else:
        assert status.startswith(b"HTTP/1.1 206"), status
        content_range = header(fields, "Content-Range")
        if content_range is not None:
            start = int(content_range.split()[1].split("-")[0])
            assert body == data[start:start + len(body)]
        else:  # multipart: the first part is complete and correct
            assert data[:10] in body
    assert_clean(server)


@pytest.mark.network
@pytest.mark.parametrize("route", ["/shrink-before", "/shrink-during"])
@pytest.mark.parametrize("range_value", ["bytes=100-", "bytes=-3000000",
                                         "bytes=0-9,3000000-3000099", "bytes=3000000-,0-9"])
def test_shrunk_file_is_never_padded(fault_server: tuple[str, Server, bytes], route: str,
                                     range_value: str) -> None:
    """The file loses its second half after the application took its length.

    ``/shrink-before``: it is already short when the middleware looks, so the 200 passes
    through untouched (what the server then does is its own business). ``/shrink-during``:
    it shrinks once the transfer starts, after the middleware measured it. Either way the
    client gets a prefix of the right bytes and an aborted transfer, never a body padded or
    relabelled to look complete.
    """
    name, server, data = fault_server
    status, fields, body = read_to_eof(server.port, route, {"Range": range_value})
    if route == "/shrink-before":
        assert status.startswith(b"HTTP/1.1 200"), status
        assert header(fields, "Content-Range") is None
        assert body == data[:len(body)]
        declared = int(header(fields, "Content-Length") or -1)
        # TrackedFile overrides read(): not provably a plain file (files.on_disk), so no
        # server's wrapper gets it (waitress's would rewrite Content-Length to a complete
        # short 200); the middleware reads it, and every server aborts the short body.
        assert declared == len(data) and len(body) < declared, name
        assert_clean(server)
        return
    if status in (b"", b"HTTP/1.1 500 Internal Server Error"):
        # The first byte to send was already missing: the error came before the headers, so
        # the server closed the connection (gunicorn: an OSError) or answered 500 (waitress).
        assert range_value.startswith("bytes=3000000-")
        assert_clean(server)
        return
    assert status.startswith(b"HTTP/1.1 206"), status
    declared = int(header(fields, "Content-Length") or -1)
    assert 0 <= len(body) < declared, (len(body), declared)
    assert b"\0" * 4096 not in body  # never padded
    content_range = header(fields, "Content-Range")
    if content_range is not None:
        start = int(content_range.split()[1].split("-")[0])
        assert body == data[start:start + len(body)]
    else:
        ctype = header(fields, "Content-Type") or ""
        assert ctype.startswith("multipart/byteranges"), ctype
        assert b"--" + ctype.split("=")[1].encode() + b"--" not in body  # no close delimiter
    assert_clean(server)


def hang_up(port: int, path: str, range_value: str | None) -> None:
    """Ask for a large body, read a little of it, and reset the connection."""
    sock = socket.create_connection((HOST, port), timeout=10)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n"
        if range_value is not None:
            request += f"Range: {range_value}\r\n"
        sock.sendall((request + "\r\n").encode())
        got = 0
        while got < 1024:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += len(chunk)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


HANG_UP_SHAPES = [("/file", "bytes=100-"), ("/file", "bytes=0-9,200000-"),
                  ("/gen", "bytes=100-"), ("/gen", "bytes=0-9,200000-"), ("/file", None),
                  ("/gen", None)]


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("name", ["gunicorn-gthread", "waitress"])
def test_hang_ups_leak_nothing(name: str, tmp_path: Path) -> None:
    """Many clients hang up mid-transfer: every body is closed, no descriptor leaks."""
    rounds = int(os.environ.get("RANGEWSGI_HANGUPS", "1000"))
    server, data = start_fault_server(name, tmp_path)
    try:
        for index in range(30):  # warm up: thread pools, buffers, imports
            hang_up(server.port, *HANG_UP_SHAPES[index % len(HANG_UP_SHAPES)])
        before = settled(server)
        pid = before["pid"]
        fds_before = fd_count(pid)
        for index in range(rounds):
            hang_up(server.port, *HANG_UP_SHAPES[index % len(HANG_UP_SHAPES)])
        after = settled(server)
        assert after["pid"] == pid, "the worker was replaced"
        assert after["opened"] - before["opened"] >= rounds
        assert after["opened"] == after["closed"], after
        assert after["closed_again"] == 0, after
        fds_after = fd_count(pid)
        assert fds_after <= fds_before + 8, (fds_before, fds_after)
        # The server still answers correctly after all that.
        with RawClient(server.port) as client:
            resp = client.request("/file", {"Range": "bytes=0-9,-10"})
            parts = parse_multipart(resp.body, resp.header("Content-Type") or "")
            assert [p for _, p in parts] == [data[:10], data[-10:]]
    finally:
        server.stop()
    print(f"{name}: {rounds} hang-ups, fds {fds_before} -> {fds_after}, "
          f"bodies opened {after['opened']} closed {after['closed']}")
