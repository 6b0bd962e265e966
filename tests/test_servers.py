"""rangewsgi under every WSGI server users run it on, byte for byte, over real sockets.

Each server is started once per module on a free loopback port and serves ``serverapps.app``
(three body kinds: ``wsgi.file_wrapper`` over a real file, a generator with Content-Length, a
list). Every request is read by a strict keep-alive client; on servers that keep connections
open a second request follows on the same connection, so a body that overruns its
Content-Length corrupts the second answer and fails the test.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from server_configs.checks import (
    cases,
    check_full,
    check_multi,
    check_single,
    sendfile_calls,
    with_etag,
)
from server_configs.launch import (
    KEEPALIVE,
    SERVERS,
    launch,
    shared_dir,
)
from server_configs.launch import write_data as write_file
from support import RawClient, Server, free_port

pytestmark = pytest.mark.network

SIZE = 200_003  # odd, larger than every server's block size
BODIES = ["/file", "/gen", "/list"]


@dataclass
class Served:
    server: Server
    name: str
    data: bytes
    etag: str
    keepalive: bool


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = shared_dir("rangewsgi-servers-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def data_file(workdir: Path) -> tuple[Path, bytes]:
    return write_file(workdir, SIZE)


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest, workdir: Path,
           data_file: tuple[Path, bytes]) -> Iterator[Served]:
    name: str = request.param
    path, data = data_file
    sub = workdir / name
    sub.mkdir()
    sub.chmod(0o755)
    server = launch(name, free_port(), sub, path)
    try:
        with RawClient(server.port) as client:
            etag = client.request("/file", method="HEAD").header("ETag")
        assert etag is not None and etag.startswith('"')
        yield Served(server, name, data, etag, KEEPALIVE[name])
    finally:
        server.stop()


CASES = cases(SIZE)


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("case", list(CASES))
def test_ranges(served: Served, body: str, case: str) -> None:
    method, headers, check = CASES[case]
    follow = {"Range": "bytes=1-2"}
    with RawClient(served.server.port) as client:
        resp = client.request(body, with_etag(headers, served.etag), method)
        check(resp, served.data)
        if served.keepalive:
            # Same connection: any byte beyond the first answer's framing lands here.
            assert (resp.header("Connection") or "").lower() != "close"
            second = client.request(body, follow)
            check_single(second, served.data, 1, 2)
        client.assert_idle(0.1)


# --- zero-copy --------------------------------------------------------------------------------

# Servers whose wsgi.file_wrapper is proven (tests/test_server_wrappers.py) to send a file from
# its current position, at most Content-Length bytes, with sendfile(2): gunicorn >= 21 with
# its sync and gthread workers, mod_wsgi (EnableSendfile and WSGIEnableSendfile on, as in
# server_configs/apache2.conf.in) in embedded and daemon mode (there the daemon process calls
# sendfile onto its socket to Apache). gunicorn's gevent worker and waitress honour position
# and length too, but read and send: nothing to trace.
ZERO_COPY = ["gunicorn-sync", "gunicorn-gthread", "mod_wsgi", "mod_wsgi-daemon"]


def new_sendfile_calls(trace: Path, seen: int, count: int) -> list[tuple[int, int, int]]:
    """The calls after the first ``seen``, once they have moved ``count`` bytes (bounded)."""
    deadline = time.monotonic() + 5
    while True:
        calls = sendfile_calls(trace.read_text())[seen:]
        if sum(c[2] for c in calls) >= count or time.monotonic() > deadline:
            return calls
        time.sleep(0.02)


@pytest.mark.parametrize("name", ZERO_COPY)
def test_file_ranges_go_through_sendfile(name: str, workdir: Path,
                                         data_file: tuple[Path, bytes]) -> None:
    """A single-range 206 of a file body is sent by sendfile(2) from the range's offset, and
    a Range request that ends as a 200 (If-Range mismatch) still gets zero-copy."""
    path, data = data_file
    sub = workdir / f"strace-{name}"
    sub.mkdir()
    sub.chmod(0o755)
    trace = sub / "trace.txt"
    server = launch(name, free_port(), sub, path, strace=trace)
    expected = [  # (request headers, first byte, length, sent with sendfile) of each answer
        ({"Range": "bytes=12345-187654"}, 12_345, 175_310, True),
        ({"Range": "bytes=-40000"}, SIZE - 40_000, 40_000, True),
        ({"Range": "bytes=5-9", "If-Range": '"stale"'}, 0, SIZE, True),
        ({}, 0, SIZE, True),
        # Shorter than file_wrapper_min_size (32 KiB): read by the middleware, no sendfile.
        ({"Range": "bytes=-3000"}, SIZE - 3000, 3000, False),
    ]
    try:
        for headers, first, length, zero_copy in expected:
            seen = len(sendfile_calls(trace.read_text()))
            with RawClient(server.port) as client:
                resp = client.request("/file", headers)
                if length == SIZE:
                    check_full(resp, data)
                else:
                    check_single(resp, data, first, first + length - 1)
                client.assert_idle(0.1)
            if not zero_copy:
                assert new_sendfile_calls(trace, seen, 1) == [], headers
                continue
            calls = new_sendfile_calls(trace, seen, length)
            # The first call starts at the answer's first byte and asks for exactly its
            # length; the calls together move exactly that many bytes.
            assert calls, (headers, trace.read_text()[-2000:])
            assert calls[0][:2] == (first, length), (headers, calls)
            assert sum(sent for _offset, _count, sent in calls) == length
    finally:
        server.stop()

def test_uwsgi_file_ranges_at_offsets(workdir: Path) -> None:
    """uWSGI sends a wrapped file from byte 0 whatever its offset: the range bytes must still
    be right (rangewsgi reads them itself there), and a whole-file 200 keeps uWSGI's sendfile."""
    sub = workdir / "uwsgi-offsets"
    sub.mkdir()
    path, data = write_file(sub, 3 * 1024 * 1024 + 17, "big.bin")
    trace = sub / "trace.txt"
    server = launch("uwsgi-http11", free_port(), sub, path, strace=trace)
    size = len(data)
    try:
        with RawClient(server.port) as client:
            for first, last in [(1, 1), (65536, 65536 + 1_000_000), (size - 70_000, size - 1),
                                (2 * 1024 * 1024, 3 * 1024 * 1024)]:
                check_single(client.request("/file", {"Range": f"bytes={first}-{last}"}),
                             data, first, last)
            resp = client.request("/file", {"Range": "bytes=10-19,2000000-2100000"})
            check_multi(resp, data, [(10, 19), (2_000_000, 2_100_000)])
            assert sendfile_calls(trace.read_text()) == []  # no file handed to uWSGI at an offset
            check_full(client.request("/file"), data)
            client.assert_idle(0.1)
        calls = new_sendfile_calls(trace, 0, size)
        assert calls and calls[0][:2] == (0, size), calls
    finally:
        server.stop()


# --- servers whose wrapper must not be handed a window of a file ------------------------------

def large_ranges(size: int) -> list[tuple[int, int]]:
    """Single ranges longer than file_wrapper_min_size (32 KiB); all but one end before the
    end of the file, where a wrapper that sends to EOF would overrun."""
    return [(100_000, 299_999), (1, 65_537), (size - 70_000, size - 1), (size // 2, size - 2)]


def test_debian_gunicorn_ranges_are_read_not_sendfile(workdir: Path) -> None:
    """Debian 12's gunicorn 20.1.0 sends a wrapped file from byte 0 whatever its offset
    (``socket.sendfile(file, count=n)``, no offset): a single range of a file must arrive
    byte-exact, so the middleware reads it itself there and no sendfile(2) happens; a
    whole-file 200 (the application's own answer) keeps gunicorn's sendfile."""
    sub = workdir / "gunicorn20-ranges"
    sub.mkdir()
    sub.chmod(0o755)
    path, data = write_file(sub, 600_001, "big.bin")
    trace = sub / "trace.txt"
    server = launch("gunicorn20-sync", free_port(), sub, path, strace=trace)
    try:
        for first, last in large_ranges(len(data)):
            with RawClient(server.port) as client:  # gunicorn's sync worker closes each time
                resp = client.request("/file", {"Range": f"bytes={first}-{last}"})
                check_single(resp, data, first, last)
                client.assert_idle(0.1)
        time.sleep(0.3)  # strace writes a call's line once it has returned
        assert sendfile_calls(trace.read_text()) == [], trace.read_text()[-2000:]
        with RawClient(server.port) as client:
            check_full(client.request("/file"), data)
        calls = new_sendfile_calls(trace, 0, len(data))
        assert calls and calls[0][:2] == (0, len(data)), calls
    finally:
        server.stop()


def test_bjoern_ranges_stop_at_their_end(workdir: Path) -> None:
    """bjoern sends a wrapped file from its offset to the end of the file, ignoring
    Content-Length: a single range must still carry exactly its bytes, and the next request on
    the same keep-alive connection must get a clean answer."""
    sub = workdir / "bjoern-ranges"
    sub.mkdir()
    sub.chmod(0o755)
    path, data = write_file(sub, 600_001, "big.bin")
    server = launch("bjoern", free_port(), sub, path)
    try:
        with RawClient(server.port) as client:
            for first, last in large_ranges(len(data)):
                resp = client.request("/file", {"Range": f"bytes={first}-{last}"})
                check_single(resp, data, first, last)
                check_single(client.request("/file", {"Range": "bytes=1-2"}), data, 1, 2)
            check_full(client.request("/file"), data)
            client.assert_idle(0.1)
    finally:
        server.stop()
