"""A CDN-style cache in front of rangewsgi: nginx ``proxy_cache`` with ``slice 1m``.

nginx fetches the origin's file as 1 MiB ranges (``Range: $slice_range``), caches each slice
under its own key and assembles whole downloads and arbitrary ranges from the slices. This only
works when the origin answers each slice with a byte-exact ``206`` and keeps a stable ETag
(nginx refuses slices whose ETag differs: RFC 9110 14.3 and 8.8.3).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from server_configs.checks import check_single
from server_configs.launch import FILE_ENV, HERE, gunicorn_cmd, require, shared_dir, write_data
from support import RawClient, Server, free_port, start_server

pytestmark = [pytest.mark.network, pytest.mark.slow]

MIB = 1 << 20
SIZE = 20 * MIB + 4321  # the last slice is a short one
# gunicorn access log line: status, bytes, "Range", "request line" (see gunicorn_cmd)
LOG_LINE = re.compile(r'^(\d{3}) \d+ "([^"]*)" "GET ([^ ]*) HTTP/1\.[01]"$', re.M)


@dataclass
class Cdn:
    origin: Server
    edge: Server
    data: bytes
    workdir: Path


def origin_requests(origin: Server, target: str) -> list[tuple[int, str]]:
    """(status, Range header) of every request the origin logged for ``target``."""
    return [(int(m[1]), m[2]) for m in LOG_LINE.finditer(origin.log()) if m[3] == target]


def wait_logged(origin: Server, target: str, count: int) -> list[tuple[int, str]]:
    """The origin's log lines for ``target`` once there are ``count`` (bounded wait)."""
    deadline = time.monotonic() + 10
    while True:
        seen = origin_requests(origin, target)
        if len(seen) >= count or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def slice_range(index: int) -> str:
    return f"bytes={index * MIB}-{(index + 1) * MIB - 1}"


@pytest.fixture(scope="module")
def cdn() -> Iterator[Cdn]:
    require("nginx")
    workdir = shared_dir("rangewsgi-cdn-")
    path, data = write_data(workdir, SIZE)
    origin_port, edge_port = free_port(), free_port()
    origin = start_server(gunicorn_cmd(origin_port, "gthread"), origin_port,
                          env={FILE_ENV: str(path)}, cwd=workdir,
                          log_path=workdir / "origin.log")
    edge: Server | None = None
    try:
        conf = (HERE / "nginx-slice.conf.in").read_text()
        values = {"@DIR@": str(workdir), "@PORT@": str(edge_port),
                  "@ORIGIN@": str(origin_port),
                  "@USER@": "user root;" if os.geteuid() == 0 else ""}
        for key, value in values.items():
            conf = conf.replace(key, value)
        (workdir / "nginx.conf").write_text(conf)
        cmd = ["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
               "-e", str(workdir / "error.log"), "-g", "daemon off;"]
        edge = start_server(cmd, edge_port, cwd=workdir, log_path=workdir / "nginx.out")
        yield Cdn(origin, edge, data, workdir)
    finally:
        if edge is not None:
            edge.stop(timeout=10)
        origin.stop()
        errors = (workdir / "error.log").read_text() if (workdir / "error.log").exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)
    # nginx logs this when a slice's ETag differs from the first slice's
    assert "etag mismatch" not in errors, errors


def test_full_download_is_byte_exact(cdn: Cdn) -> None:
    target = "/file?case=full"
    with RawClient(cdn.edge.port, timeout=60) as client:
        resp = client.request(target)
        assert resp.status == 200
        assert resp.header("X-Cache-Status") == "MISS"
        assert len(resp.body) == SIZE
        assert resp.body == cdn.data
        client.assert_idle(0.1)
    slices = -(-SIZE // MIB)
    logged = wait_logged(cdn.origin, target, slices)
    # Every byte came from the origin as a 1 MiB range answered 206, each slice once.
    assert sorted(logged, key=lambda e: int(e[1][6:].split("-")[0])) == \
        [(206, slice_range(i)) for i in range(slices)]


def test_mid_file_range_is_served_from_slices(cdn: Cdn) -> None:
    target = "/file?case=mid"
    first, last = 5_000_000, 9_000_000
    with RawClient(cdn.edge.port, timeout=60) as client:
        check_single(client.request(target, {"Range": f"bytes={first}-{last}"}), cdn.data,
                     first, last)
        # Only the slices holding the range were fetched from the origin, each as a 206.
        wanted = range(first // MIB, last // MIB + 1)
        logged = wait_logged(cdn.origin, target, len(wanted))
        assert sorted(logged) == sorted((206, slice_range(i)) for i in wanted)
        # Again, and a range inside those slices: from the cache, the origin not asked.
        for lo, hi in [(first, last), (6 * MIB - 10, 6 * MIB + 9), (first, first)]:
            resp = client.request(target, {"Range": f"bytes={lo}-{hi}"})
            check_single(resp, cdn.data, lo, hi)
            assert resp.header("X-Cache-Status") == "HIT"
        client.assert_idle(0.1)
    assert len(origin_requests(cdn.origin, target)) == len(wanted)


def test_origin_etag_is_stable(cdn: Cdn) -> None:
    """Every slice and the edge's answer carry one ETag: the origin's, unchanged."""
    with RawClient(cdn.origin.port) as origin:
        tags = {origin.request("/file", {"Range": slice_range(i)}).header("ETag")
                for i in (0, 7, 20)}
        tags.add(origin.request("/file", method="HEAD").header("ETag"))
    assert len(tags) == 1 and None not in tags
    with RawClient(cdn.edge.port, timeout=60) as edge:
        resp = edge.request("/file?case=etag", {"Range": "bytes=-100"})
        check_single(resp, cdn.data, SIZE - 100, SIZE - 1)
        assert resp.header("ETag") in tags
