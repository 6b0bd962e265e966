"""Hostile response bodies under every server in the server table, byte for byte.

``serverapps.hostile`` answers ``/<kind>`` with bodies whose descriptor is not the bytes they
yield (compressed streams, archive members), that have no descriptor (in-memory files, mmap,
a ``read`` that over-returns), whose size is not their content (procfs), that cannot seek (a
pipe) or that hold more than the app announced. Each server is started once; each kind gets a
``GET`` and a ``Range`` request. On servers that keep connections open every request of a
server goes over one connection, so that a body overrunning its framing corrupts the next
answer; elsewhere each connection is read to its end, which must hold nothing more.

The in-process versions of these bodies are in ``test_app_bodies.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import serverapps
from server_configs.checks import check_full, check_single
from server_configs.launch import KEEPALIVE, SERVERS, launch, shared_dir, write_data
from support import RawClient, RawResponse, free_port

pytestmark = pytest.mark.network

SIZE = 400_000  # the size of the case; a range of it is longer than 32 KiB


@pytest.fixture(scope="module")
def data_file() -> Iterator[tuple[Path, bytes]]:
    workdir = shared_dir("rangewsgi-hostile-")
    try:
        path, data = write_data(workdir, SIZE)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(serverapps.FILE_ENV, str(path))
            serverapps.write_hostile_files(data)
        yield path, data
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def requests_for(kind: str, data: bytes) -> list[tuple[dict[str, str], int, int]]:
    """(headers, first, last) of each request: the whole body, then its middle half."""
    expected = serverapps.hostile_expected(kind, data)
    size = len(expected)
    return [({}, 0, size - 1), ({"Range": f"bytes={size // 4}-{3 * size // 4}"},
                                 size // 4, 3 * size // 4)]


def check(resp: RawResponse, expected: bytes, headers: dict[str, str], first: int,
          last: int, where: str) -> None:
    """The whole body as a 200, or the range as a 206; a Content-Length always true."""
    length = resp.header("Content-Length")
    assert length is None or int(length) == len(resp.body), where
    if resp.status == 200:
        assert resp.body == expected, f"{where}: wrong bytes in the 200 ({resp.body[:8]!r})"
        check_full(resp, expected)
    else:
        assert "Range" in headers, where
        assert resp.body == expected[first:last + 1], f"{where}: wrong bytes in the 206"
        check_single(resp, expected, first, last)


def delimited_by_close(resp: RawResponse) -> bool:
    """No Content-Length and not chunked: the body ends where the connection does."""
    chunked = "chunked" in (resp.header("Transfer-Encoding") or "").lower()
    return resp.header("Content-Length") is None and not chunked


def read_to_end(client: RawClient) -> bytes:
    """What the server sends after the response, until it closes the connection."""
    extra = client.buf
    while chunk := client.sock.recv(1 << 16):
        extra += chunk
    return extra


@pytest.mark.parametrize("server", SERVERS)
def test_hostile_bodies(server: str, data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    workdir = shared_dir(f"rangewsgi-hostile-{server}-")
    running = launch(server, free_port(), workdir, path, "hostile")
    client = RawClient(running.port)
    try:
        for kind in serverapps.HOSTILE:
            expected = serverapps.hostile_expected(kind, data)
            for headers, first, last in requests_for(kind, data):
                where = f"{server} {kind} {headers}"
                resp = client.request(f"/{kind}", headers)
                check(resp, expected, headers, first, last, where)
                closing = ((resp.header("Connection") or "").lower() == "close"
                           or delimited_by_close(resp))
                if closing or not KEEPALIVE[server]:
                    # The connection ends here: nothing may follow the body.
                    assert read_to_end(client) == b"", f"{where}: bytes after the body"
                    client.close()
                    client = RawClient(running.port)
        client.assert_idle(0.1)
    finally:
        client.close()
        running.stop()
        shutil.rmtree(workdir, ignore_errors=True)
