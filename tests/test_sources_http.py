"""``HTTPSource``: another HTTP server's resource as a ranged source, against real upstreams.

nginx (Debian's, started here with its own config) is the well-behaved upstream: exact bytes,
one conditional ranged GET per part (read from its access log), a file replaced between two
parts aborts the response. The misbehaving upstream of ``sourceservers.py`` fails in every
way listed there; each time the client gets an error before the headers or a response cut
short, and never a wrong byte. Connections: counted on this machine after the pool is cleared.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3
from server_configs.checks import check_416, check_full, check_multi, check_single
from sourceservers import (
    SIZE,
    check_outcome,
    client_sockets,
    fetch,
    nginx_requests,
    run_wsgi,
    same_boundary,
    serve_wsgi,
    serving,
    source_app,
    start_nginx,
    start_upstream,
    upstream_stats,
    versions,
    wait_until,
)
from support import ROOT, RawClient, Server, free_port, start_server

from rangewsgi import RangeMiddleware
from rangewsgi.sources import SourceChanged, is_ranged_source
from rangewsgi.sources.http import HTTPSource, UpstreamError

pytestmark = pytest.mark.network

V0, V1 = versions()
MULTI = "bytes=0-99,200000-200099,-100"  # three parts, out of order, far apart
MULTI_SPANS = [(0, 99), (200000, 200099), (SIZE - 100, SIZE - 1)]


@dataclass
class Nginx:
    server: Server
    workdir: Path

    def url(self, name: str) -> str:
        return f"{self.server.url}/{name}"

    def put(self, name: str, data: bytes, mtime: int = 1_700_000_000) -> None:
        path = self.workdir / "www" / name
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        temporary.chmod(0o644)
        os.utime(temporary, (mtime, mtime))
        os.replace(temporary, path)


@pytest.fixture(scope="module")
def nginx() -> Iterator[Nginx]:
    with serving("rangewsgi-http-nginx-", start_nginx) as (server, workdir):
        yield Nginx(server, workdir)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Server]:
    with serving("rangewsgi-http-upstream-", start_upstream) as (server, _):
        yield server


@pytest.fixture
def pool() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager(maxsize=4, retries=False)
    yield manager
    close_pools(manager)


def proxy_app(base: str, **options: Any) -> RangeMiddleware:
    """A WSGI app answering each path with an ``HTTPSource`` over ``base + path``."""

    return source_app(lambda path: HTTPSource(base + path, **options))


def close_pools(pool: urllib3.PoolManager) -> None:
    """Close every idle connection of ``pool`` (``clear()`` alone only forgets them)."""
    for connections in list(pool.pools._container.values()):
        connections.close()
    pool.clear()


def released(pool: urllib3.PoolManager, port: int) -> bool:
    """Every connection went back to the pool or was closed: once the pool's idle ones are
    closed, no socket to ``port`` is left (a response never handed back would keep one)."""
    close_pools(pool)
    return wait_until(lambda: client_sockets(port) == 0, 5)


# -- a well-behaved upstream: nginx --


def test_reads_exact_bytes_from_nginx(nginx: Nginx, pool: urllib3.PoolManager) -> None:
    nginx.put("exact.bin", V0)
    source = HTTPSource(nginx.url("exact.bin"), pool=pool, chunk_size=4096)
    assert is_ranged_source(source)
    assert source.size == SIZE and source.content_type == "application/octet-stream"
    assert source.etag is not None and source.etag.startswith('"')
    assert source.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    for start, stop in [(0, 1), (0, 100), (SIZE - 1, SIZE), (12345, 200001), (0, SIZE)]:
        assert b"".join(source.read_range(start, stop)) == V0[start:stop]
    assert b"".join(source) == V0
    # Reads on one kept-alive connection: at most one socket open at a time.
    assert client_sockets(nginx.server.port) <= 1
    logged = nginx_requests(nginx.workdir, "/exact.bin")
    assert logged[0][:2] == ("HEAD", 200)
    assert [(m, s, r) for m, s, r, _ in logged[1:6]] == [
        ("GET", 206, "bytes=0-0"), ("GET", 206, "bytes=0-99"),
        ("GET", 206, f"bytes={SIZE - 1}-{SIZE - 1}"), ("GET", 206, "bytes=12345-200000"),
        ("GET", 206, f"bytes=0-{SIZE - 1}")]
    assert all(if_match == source.etag for *_, if_match in logged[1:])
    source.close()
    assert released(pool, nginx.server.port)
    with pytest.raises(ValueError):
        source.read_range(0, SIZE + 1)


def test_middleware_over_nginx(nginx: Nginx, pool: urllib3.PoolManager) -> None:
    nginx.put("movie.bin", V0)
    app = proxy_app(nginx.server.url, pool=pool)
    single = run_wsgi(app, "/movie.bin", {"Range": "bytes=-100"})
    assert single.error is None and single.status.startswith("206")
    assert single.body == V0[-100:]
    assert single.header("Content-Range") == f"bytes {SIZE - 100}-{SIZE - 1}/{SIZE}"
    assert single.header("ETag") is not None  # the upstream's validators, passed on
    before = len(nginx_requests(nginx.workdir, "/movie.bin"))
    multi = run_wsgi(app, "/movie.bin", {"Range": MULTI})
    assert multi.error is None and multi.status.startswith("206")
    from support import parse_multipart

    parts = parse_multipart(multi.body, multi.header("Content-Type") or "")
    assert [body for _, body in parts] == [V0[a:b + 1] for a, b in MULTI_SPANS]
    # One HEAD and one ranged GET per part, in the order sent: three parts, three GETs.
    logged = nginx_requests(nginx.workdir, "/movie.bin")[before:]
    assert [(m, s, r) for m, s, r, _ in logged] == [("HEAD", 200, "")] + [
        ("GET", 206, f"bytes={a}-{b}") for a, b in MULTI_SPANS]
    full = run_wsgi(app, "/movie.bin")
    assert full.error is None and full.status.startswith("200") and full.body == V0
    before = len(nginx_requests(nginx.workdir, "/movie.bin"))
    unsatisfiable = run_wsgi(app, "/movie.bin", {"Range": f"bytes={SIZE}-"})
    assert unsatisfiable.status.startswith("416")
    assert unsatisfiable.header("Content-Range") == f"bytes */{SIZE}"
    # A 416 is decided from the HEAD: no GET upstream.
    assert [m for m, *_ in nginx_requests(nginx.workdir, "/movie.bin")[before:]] == ["HEAD"]
    missing = run_wsgi(app, "/nothing.bin", {"Range": "bytes=0-9"})
    assert missing.status.startswith("404") and missing.body == b""
    assert released(pool, nginx.server.port)


def test_replaced_between_parts_aborts(nginx: Nginx, pool: urllib3.PoolManager) -> None:
    """A file replaced upstream after the first part: 412 on the second, never a mix."""
    nginx.put("swap.bin", V0)
    expected = run_wsgi(proxy_app(nginx.server.url, pool=pool), "/swap.bin", {"Range": MULTI})

    class Swapping(HTTPSource):
        reads = 0

        def read_range(self, start: int, stop: int) -> Iterator[bytes]:
            Swapping.reads += 1
            if Swapping.reads == 2:
                nginx.put("swap.bin", V1, mtime=1_700_000_100)
            return super().read_range(start, stop)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "video/mp4")])
        return Swapping(nginx.url("swap.bin"), pool=pool)

    outcome = run_wsgi(RangeMiddleware(app), "/swap.bin", {"Range": MULTI})
    assert isinstance(outcome.error, SourceChanged)
    whole = same_boundary(expected, outcome)
    # What went out is a strict prefix of the old version's answer: the first part only.
    assert outcome.sent_headers and whole.startswith(outcome.body) and outcome.body != whole
    assert V0[:100] in outcome.body and V1[200000:200100] not in outcome.body
    logged = nginx_requests(nginx.workdir, "/swap.bin")
    assert [(m, s) for m, s, *_ in logged[-3:]] == [("HEAD", 200), ("GET", 206), ("GET", 412)]
    assert released(pool, nginx.server.port)


def test_proxy_example(nginx: Nginx) -> None:
    """``examples/proxy.py`` in front of nginx, over real sockets: byte for byte."""
    nginx.put("clip.mp4", V0)
    port = free_port()
    server = start_server([sys.executable, str(ROOT / "examples" / "proxy.py"),
                           "--upstream", nginx.server.url, "--port", str(port)], port,
                          cwd=nginx.workdir, log_path=nginx.workdir / "proxy-example.log")
    try:
        def request(headers: dict[str, str] | None = None, target: str = "/clip.mp4") -> Any:
            with RawClient(port) as client:
                return client.request(target, headers)

        before = len(nginx_requests(nginx.workdir, "/clip.mp4"))
        check_single(request({"Range": "bytes=1000-1999"}), V0, 1000, 1999)
        multi = request({"Range": MULTI})
        check_multi(multi, V0, MULTI_SPANS, "video/mp4")
        check_full(request(), V0)
        check_416(request({"Range": f"bytes={SIZE + 5}-"}), V0)
        assert request(target="/absent.mp4").status == 404
        gets = [(s, r) for m, s, r, _ in nginx_requests(nginx.workdir, "/clip.mp4")[before:]
                if m == "GET"]
        assert gets == [(206, "bytes=1000-1999")] + [
            (206, f"bytes={a}-{b}") for a, b in MULTI_SPANS] + [(200, "")]
    finally:
        server.stop()


# -- misbehaving upstreams --

# (faults, Range, options, the error the response ends with or None, whether any byte may go out)
CASES = [
    ("ok", MULTI, {}, None, True),
    ("nohead", "bytes=100-199", {}, None, True),
    ("fail@1", "bytes=0-99", {}, UpstreamError, False),
    ("fail@2", MULTI, {}, UpstreamError, True),
    ("reset@1", "bytes=0-99", {}, ConnectionError, False),
    ("reset@2", MULTI, {}, ConnectionError, True),
    ("short@2", MULTI, {}, ConnectionError, True),
    ("stall@2", MULTI, {"timeout": 0.5}, TimeoutError, True),
    ("hang@1", "bytes=0-99", {"timeout": 0.5}, TimeoutError, False),
    ("ignore", "bytes=100-199,1000-1099", {}, None, True),
    ("ignore", "bytes=200000-200099", {"max_skip": 1000}, UpstreamError, False),
    ("shrunk", "bytes=-100", {}, SourceChanged, False),
    ("shrunk", "bytes=0-99,-100", {}, SourceChanged, True),
    ("long", "bytes=0-99", {}, UpstreamError, False),
    ("wrong", "bytes=0-99", {}, UpstreamError, False),
    ("flip@2", MULTI, {}, SourceChanged, True),
    ("flip@2+deaf", MULTI, {}, SourceChanged, True),
    ("flip@2+weak", MULTI, {}, SourceChanged, True),
    ("flip@2+weak+deaf", MULTI, {}, SourceChanged, True),
    ("flip@2+noetag", MULTI, {}, SourceChanged, True),
    ("flip@1", "", {}, SourceChanged, False),
    ("stall@1", "", {"timeout": 0.5}, TimeoutError, True),
]


@pytest.mark.parametrize(("faults", "ranges", "options", "error", "partial"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_upstream(upstream: Server, pool: urllib3.PoolManager, faults: str, ranges: str,
                      options: dict[str, Any], error: type[Exception] | None,
                      partial: bool) -> None:
    """Never a wrong byte: the answer is whole and exact, or stops before its headers, or
    is cut short inside a correct prefix of the exact answer."""
    token = f"{faults}.{len(CASES)}-{abs(hash((ranges, str(options))))}"
    headers = {"Range": ranges} if ranges else {}
    expected = run_wsgi(proxy_app(upstream.url, pool=pool), f"/ok.{token}", headers)
    assert expected.error is None
    outcome = run_wsgi(proxy_app(upstream.url, pool=pool, **options), f"/{token}", headers)
    check_outcome(outcome, expected, error, partial)
    assert released(pool, upstream.port)


@pytest.mark.parametrize(("faults", "error"), [("missing", FileNotFoundError),
                                               ("down", UpstreamError),
                                               ("hanghead", TimeoutError)])
def test_construction_errors(upstream: Server, pool: urllib3.PoolManager, faults: str,
                             error: type[Exception]) -> None:
    """Before any response header: a clear error from the constructor, no connection kept."""
    with pytest.raises(error) as raised:
        HTTPSource(f"{upstream.url}/{faults}.construct", pool=pool, timeout=0.5)
    if faults == "down":
        assert isinstance(raised.value, UpstreamError) and raised.value.status == 503
    assert released(pool, upstream.port)
    with pytest.raises(ConnectionError):
        HTTPSource(f"http://127.0.0.1:{free_port()}/x", pool=pool)


def test_the_client_sees_an_error_or_a_cut(upstream: Server) -> None:
    """Over a real socket: a failure before the first byte is a 5xx (or no answer at all), a
    later one cuts the 206 short; the upstream keeps no connection open afterwards."""
    pool = urllib3.PoolManager(maxsize=4, retries=False)
    with serve_wsgi(proxy_app(upstream.url, pool=pool)) as port:
        first = fetch(port, "/fail@1.socket", {"Range": "bytes=0-99"})
        assert first.status == 0 or first.status >= 500
        later = fetch(port, "/fail@2.socket", {"Range": MULTI})
        assert later.status == 206 and not later.complete
        good = fetch(port, "/ok.socket", {"Range": MULTI})
        assert good.status == 206 and good.complete
        boundary = (later.header("Content-Type") or "").split("boundary=")[1]
        old = (good.header("Content-Type") or "").split("boundary=")[1]
        assert good.body.replace(old.encode(), boundary.encode()).startswith(later.body)
        missing = fetch(port, "/missing.socket")
        assert missing.status == 404 and missing.complete
    close_pools(pool)
    assert wait_until(lambda: upstream_stats(upstream.port)["open"] == 0, 5)
