"""``FsspecSource``: a file on any fsspec file system as a ranged source.

The local and in-memory file systems need no server; s3fs runs against moto's S3 server and
fsspec's HTTP file system against the faulty upstream of ``sourceservers.py``, both started
here. Each part is read with ranged ``cat_file`` calls and the file's ``info()`` is checked
after each block, before the block goes out: a file replaced between two parts (or during
one) aborts the response with only bytes of the first version sent.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_configs.launch import in_ci
from sourceservers import (
    BUCKET,
    CREDENTIALS,
    SIZE,
    Outcome,
    client_sockets,
    moto_requests,
    run_wsgi,
    same_boundary,
    serving,
    source_app,
    start_moto,
    start_upstream,
    versions,
    wait_until,
)
from support import Server, free_port, parse_multipart

from rangewsgi import RangeMiddleware
from rangewsgi.sources import SourceChanged, is_ranged_source

if importlib.util.find_spec("fsspec") is None and not in_ci():  # in CI: fail on the import
    pytest.skip("fsspec not installed (pip install -r tests/requirements-sources.txt)",
                allow_module_level=True)

import fsspec  # type: ignore[import-untyped,unused-ignore]

from rangewsgi.sources.fsspec import FsspecSource, UpstreamError

V0, V1 = versions()
MULTI = "bytes=0-99,200000-200099,-100"
MULTI_SPANS = [(0, 99), (200000, 200099), (SIZE - 100, SIZE - 1)]


def fs_app(fs: Any, prefix: str = "", **options: Any) -> RangeMiddleware:
    """A WSGI app answering ``/<path>`` with an ``FsspecSource`` (404/502 when it cannot)."""

    return source_app(lambda path: FsspecSource(fs, prefix + path.lstrip("/"), **options))


class Swapping(FsspecSource):
    """Replaces its file (``swap()``) just before the second part is read."""

    reads = 0

    def __init__(self, fs: Any, path: str, swap: Any, **options: Any) -> None:
        super().__init__(fs, path, **options)
        self.swap = swap

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        self.reads += 1
        if self.reads == 2:
            self.swap()
        return super().read_range(start, stop)


def swapped_outcome(fs: Any, path: str, swap: Any, **options: Any) -> tuple[Outcome, Outcome]:
    """The multi-range answer without and with the file replaced between parts."""
    target = path if path.startswith("/") else "/" + path
    expected = run_wsgi(fs_app(fs, "/" if path.startswith("/") else "", **options), target,
                        {"Range": MULTI})

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "video/mp4")])
        return Swapping(fs, path, swap, **options)

    return expected, run_wsgi(RangeMiddleware(app), target, {"Range": MULTI})


def check_aborted(expected: Outcome, outcome: Outcome) -> None:
    """Aborted after the first part: a strict prefix of the first version's answer."""
    assert isinstance(outcome.error, SourceChanged), outcome.error
    whole = same_boundary(expected, outcome)
    assert outcome.sent_headers and whole.startswith(outcome.body) and outcome.body != whole
    assert V0[:100] in outcome.body and V1[200000:200100] not in outcome.body


# -- no server: local and in-memory file systems --


def test_local_file(tmp_path: Path) -> None:
    path = tmp_path / "movie.mp4"
    path.write_bytes(V0)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    fs = fsspec.filesystem("file")
    source = FsspecSource(fs, str(path), block_size=50_000)
    assert is_ranged_source(source) and source.size == SIZE
    assert source.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT" and source.etag is None
    for start, stop in [(0, 1), (SIZE - 1, SIZE), (12345, 200001), (0, SIZE)]:
        assert b"".join(source.read_range(start, stop)) == V0[start:stop]
    assert b"".join(source) == V0
    outcome = run_wsgi(fs_app(fs, "/", block_size=50_000), str(path), {"Range": MULTI})
    parts = parse_multipart(outcome.body, outcome.header("Content-Type") or "")
    assert [body for _, body in parts] == [V0[a:b + 1] for a, b in MULTI_SPANS]
    assert run_wsgi(fs_app(fs, "/"), str(path)).body == V0
    missing = run_wsgi(fs_app(fs, "/"), str(tmp_path / "absent"), {"Range": "bytes=0-9"})
    assert missing.status.startswith("404")

    def swap() -> None:
        replacement = tmp_path / "new.tmp"
        replacement.write_bytes(V1)
        os.utime(replacement, (1_700_000_100, 1_700_000_100))
        os.replace(replacement, path)

    path.write_bytes(V0)
    expected, outcome = swapped_outcome(fs, str(path), swap, block_size=50_000)
    check_aborted(expected, outcome)


def test_memory_file_system_and_a_change_inside_a_part() -> None:
    fs = fsspec.filesystem("memory", skip_instance_cache=True)
    fs.pipe_file("/media/clip.bin", V0)
    source = FsspecSource(fs, "/media/clip.bin", block_size=65536)
    assert b"".join(source.read_range(1000, 250000)) == V0[1000:250000]
    # Replaced while a part is being read: the block read after the change never goes out.
    blocks = source.read_range(0, 200000)
    first = next(blocks)
    fs.pipe_file("/media/clip.bin", V1)
    with pytest.raises(SourceChanged):
        next(blocks)
    assert first == V0[:65536]
    with pytest.raises(IsADirectoryError):
        FsspecSource(fs, "/media")
    by_url = FsspecSource.from_url("memory://media/clip.bin", block_size=1000)  # replaced: V1
    assert by_url.size == SIZE and b"".join(by_url.read_range(5, 2500)) == V1[5:2500]
    fs.rm("/media/clip.bin")
    with pytest.raises(SourceChanged):
        b"".join(source.read_range(0, 10))


# -- s3fs against moto --


@pytest.fixture(scope="module")
def moto() -> Iterator[Server]:
    with serving("rangewsgi-fsspec-moto-", start_moto) as (server, _):
        yield server


def s3fs_for(moto: Server) -> Any:
    fs = fsspec.filesystem("s3", key=CREDENTIALS["aws_access_key_id"],
                           secret=CREDENTIALS["aws_secret_access_key"],
                           endpoint_url=moto.url, skip_instance_cache=True,
                           client_kwargs={"region_name": CREDENTIALS["region_name"]})
    return fs


@pytest.mark.network
def test_s3fs_on_moto(moto: Server) -> None:
    fs = s3fs_for(moto)
    import boto3  # type: ignore[import-untyped,unused-ignore]

    boto3.client("s3", endpoint_url=moto.url, **CREDENTIALS).create_bucket(Bucket=BUCKET)
    fs.pipe_file(f"{BUCKET}/clip.mp4", V0)
    source = FsspecSource(fs, f"{BUCKET}/clip.mp4")
    assert source.size == SIZE and source.etag is not None and source.etag.startswith('"')
    assert source.last_modified is not None
    assert b"".join(source.read_range(SIZE - 100, SIZE)) == V0[-100:]
    before = len(moto_requests(moto, BUCKET, "clip.mp4"))
    outcome = run_wsgi(fs_app(fs), f"/{BUCKET}/clip.mp4", {"Range": MULTI})
    assert outcome.error is None and outcome.header("ETag") == source.etag
    parts = parse_multipart(outcome.body, outcome.header("Content-Type") or "")
    assert [body for _, body in parts] == [V0[a:b + 1] for a, b in MULTI_SPANS]
    # info() once, then per part one ranged GET and the info() that checks the version.
    assert moto_requests(moto, BUCKET, "clip.mp4")[before:] == [("HEAD", 200)] + [
        ("GET", 206), ("HEAD", 200)] * 3
    assert run_wsgi(fs_app(fs), f"/{BUCKET}/clip.mp4").body == V0
    assert run_wsgi(fs_app(fs), f"/{BUCKET}/absent.mp4").status.startswith("404")

    def swap() -> None:
        fs.pipe_file(f"{BUCKET}/clip.mp4", V1)

    expected, swapped = swapped_outcome(fs, f"{BUCKET}/clip.mp4", swap)
    check_aborted(expected, swapped)
    # moto closes every connection after its answer: none is left open here.
    assert wait_until(lambda: client_sockets(moto.port) == 0, 5)


# -- fsspec's HTTP file system against the faulty upstream --


@pytest.fixture(scope="module")
def upstream() -> Iterator[Server]:
    with serving("rangewsgi-fsspec-upstream-", start_upstream) as (server, _):
        yield server


def http_fs() -> Any:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=1, sock_read=0.5)
    return fsspec.filesystem("http", skip_instance_cache=True,
                             client_kwargs={"timeout": timeout})


def close_sessions(fs: Any) -> None:
    """Close the HTTP file system's aiohttp session (and with it its idle connections)."""
    from fsspec.asyn import sync

    async def close() -> None:
        session = await fs.set_session()
        await session.close()

    sync(fs.loop, close)


# (faults, Range, the error the response ends with or None, whether any byte may go out)
CASES: list[tuple[str, str, type[Exception] | None, bool]] = [
    ("ok", MULTI, None, True),
    ("fail@1", "bytes=0-99", OSError, False),
    ("fail@2", MULTI, OSError, True),
    ("reset@2", MULTI, OSError, True),
    ("short@2", MULTI, OSError, True),
    ("stall@2", MULTI, TimeoutError, True),
    ("ignore", "bytes=100-199", UpstreamError, False),
    ("shrunk", "bytes=-100", OSError, False),
    ("long", "bytes=0-99", UpstreamError, False),
    ("flip@2", MULTI, SourceChanged, True),
    ("flip@2+deaf", MULTI, SourceChanged, True),
]


@pytest.mark.network
@pytest.mark.parametrize(("faults", "ranges", "error", "partial"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_http_upstream(upstream: Server, faults: str, ranges: str,
                           error: type[Exception] | None, partial: bool) -> None:
    fs = http_fs()
    token = f"{faults}.fsspec-{abs(hash(ranges))}"
    headers = {"Range": ranges}
    prefix = upstream.url + "/"
    expected = run_wsgi(fs_app(fs, prefix, block_size=65536), f"/ok.{token}", headers)
    assert expected.error is None
    outcome = run_wsgi(fs_app(fs, prefix, block_size=65536), f"/{token}", headers)
    if error is None:
        assert outcome.error is None and outcome.body == same_boundary(expected, outcome)
    else:
        assert isinstance(outcome.error, error), outcome.error
        whole = same_boundary(expected, outcome)
        assert whole.startswith(outcome.body) and len(outcome.body) < len(whole)
        if not partial:
            assert not outcome.sent_headers
    close_sessions(fs)
    assert wait_until(lambda: client_sockets(upstream.port) == 0, 5)


@pytest.mark.network
def test_http_construction_errors(upstream: Server) -> None:
    fs = http_fs()
    for faults in ("missing", "down"):  # fsspec's HTTP info() makes both FileNotFoundError
        with pytest.raises(FileNotFoundError):
            FsspecSource(fs, f"{upstream.url}/{faults}.construct")
    with pytest.raises(OSError):
        FsspecSource(fs, f"http://127.0.0.1:{free_port()}/refused")
    close_sessions(fs)
    assert wait_until(lambda: client_sockets(upstream.port) == 0, 5)
