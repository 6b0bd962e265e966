"""``HTTPSource`` and redirects: credentials never leave the origin they were given for.

Two upstreams of ours run on 127.0.0.1 on different ports (two origins, RFC 6454 4: scheme,
host and port). Each records the method, path and header fields of every request it gets, so
a test can say which one saw ``Authorization``, ``Cookie`` or any other header the caller
gave. Each answers by path:

==================  =========================================================================
``/data/NAME``      the resource (``HEAD``, ``GET``, one range, ``If-Match``, ``If-Range``)
``/other/REST``     ``302`` to ``REST`` on the other server (another port)
``/host/REST``      ``302`` to ``REST`` on ``localhost`` and the same port (another host)
``/scheme/REST``    ``302`` to ``REST`` over ``https`` on the same host and port
``/same/REST``      ``302`` to ``/REST`` on the same server
``/loop/REST``      ``302`` to itself
``/get-other/REST`` the resource's fields to ``HEAD``; ``302`` to ``REST`` on the other server
                    to ``GET`` (an upstream whose redirects differ between requests)
==================  =========================================================================
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from server_configs.launch import shared_dir
from sourceservers import CREDENTIALS, SIZE, fetch, serve_wsgi, source_app, versions
from support import HOST, Server, free_port, start_server

from rangewsgi.sources.http import HTTPSource, UpstreamError

pytestmark = pytest.mark.network

V0, _ = versions()
ETAG = '"v0"'
MODIFIED = formatdate(1_600_000_000, usegmt=True)
SECRETS = {"Authorization": "Bearer s3cr3t-token", "Cookie": "session=s3cr3t-cookie",
           "Proxy-Authorization": "Basic czNjcjN0", "X-Api-Key": "s3cr3t-key"}
SPANS = [(0, 1), (0, 100), (123_456, 200_001), (SIZE - 1, SIZE)]


# -- the upstream (runs in its own process: python tests/test_sources_redirects.py ...) --


class _Upstream(ThreadingHTTPServer):
    daemon_threads = True
    peer: int
    record: Path
    lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Upstream

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        self._record()
        kind, _, rest = self.path.lstrip("/").partition("/")
        port = self.server.server_address[1]
        targets = {"other": f"http://{HOST}:{self.server.peer}/{rest}",
                   "host": f"http://localhost:{port}/{rest}",
                   "scheme": f"https://{HOST}:{port}/{rest}",
                   "same": f"/{rest}", "loop": self.path}
        if not rest:  # a bucket, to botocore: answered 404, never redirected
            self._send(404, {})
        elif kind == "get-other" and not head:
            self._send(302, {"Location": f"http://{HOST}:{self.server.peer}/{rest}"})
        elif kind in targets:
            self._send(302, {"Location": targets[kind]})
        elif kind in ("data", "get-other"):
            self._resource(head)
        else:
            self._send(404, {})

    def _record(self) -> None:
        line = json.dumps({"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}})
        with self.server.lock, open(self.server.record, "a", encoding="utf-8") as out:
            out.write(line + "\n")

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"",
              head: bool = False) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _resource(self, head: bool) -> None:
        fields = {"ETag": ETAG, "Last-Modified": MODIFIED, "Accept-Ranges": "bytes",
                  "Content-Type": "application/octet-stream"}
        if self.headers.get("If-Match", ETAG) != ETAG:  # RFC 9110 13.1.1
            self._send(412, {})
            return
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if match is None or self.headers.get("If-Range", ETAG) != ETAG:  # RFC 9110 13.1.5
            self._send(200, fields, V0, head)
            return
        first, last = int(match[1]), min(int(match[2]), SIZE - 1)
        if first > last:
            self._send(416, {"Content-Range": f"bytes */{SIZE}"})
            return
        self._send(206, {**fields, "Content-Range": f"bytes {first}-{last}/{SIZE}"},
                   V0[first:last + 1], head)


def run(port: int, peer: int, record: Path) -> None:
    server = _Upstream((HOST, port), _Handler)
    server.peer, server.record, server.lock = peer, record, threading.Lock()
    record.touch()
    server.serve_forever()


# -- the tests --


@dataclass
class Origins:
    """The two upstreams: ``a`` is the origin the tests ask, ``b`` the other one."""

    a: Server
    b: Server
    workdir: Path

    def requests(self, server: Server) -> list[dict[str, Any]]:
        path = self.workdir / f"requests-{server.port}.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def at(self, server: Server, path: str) -> list[tuple[str, list[str]]]:
        """(method, names of the caller's headers it carried) of each request for ``path``."""
        return [(r["method"], sorted(k for k in r["headers"] if k in _SECRET_NAMES))
                for r in self.requests(server) if r["path"] == path]

    def leaked(self, server: Server, path: str) -> list[tuple[str, list[str]]]:
        """The requests for ``path`` that carried any of the caller's headers."""
        return [seen for seen in self.at(server, path) if seen[1]]


_SECRET_NAMES = {name.lower() for name in SECRETS}


@pytest.fixture(scope="module")
def origins() -> Iterator[Origins]:
    workdir = shared_dir("rangewsgi-redirects-")
    ports = free_port(), free_port()
    started: list[Server] = []
    try:
        for port, peer in (ports, ports[::-1]):
            record = workdir / f"requests-{port}.jsonl"
            started.append(start_server([sys.executable, __file__, str(port), str(peer),
                                         str(record)], port, cwd=workdir,
                                        log_path=workdir / f"upstream-{port}.log"))
        yield Origins(started[0], started[1], workdir)
    finally:
        for server in started:
            server.stop(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pool() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager(maxsize=4, retries=False)
    yield manager
    manager.clear()


def read_all(source: HTTPSource) -> None:
    """Every span, then the whole resource, each byte for byte."""
    for start, stop in SPANS:
        assert b"".join(source.read_range(start, stop)) == V0[start:stop]
    assert b"".join(source) == V0


def target(origins: Origins, kind: str) -> Server:
    """The server a ``/kind/...`` redirect of ``a`` points at."""
    return origins.b if kind in ("other", "get-other") else origins.a


ALL = sorted(_SECRET_NAMES)


@pytest.mark.parametrize("kind", ["other", "host", "scheme"])
def test_cross_origin_redirect_refused_by_default(origins: Origins, pool: urllib3.PoolManager,
                                                  kind: str) -> None:
    name = f"refused-{kind}.bin"
    try:
        source = HTTPSource(f"{origins.a.url}/{kind}/data/{name}", pool=pool, headers=SECRETS)
        read_all(source)  # what today's code does: each GET carries them to the other origin
    except UpstreamError as exc:
        refusal: UpstreamError | None = exc
    else:
        refusal = None
    assert origins.leaked(target(origins, kind), f"/data/{name}") == [], \
        "the caller's headers reached another origin"
    assert origins.at(target(origins, kind), f"/data/{name}") == []
    assert refusal is not None and "another origin" in str(refusal), refusal
    assert "redirects='any'" in str(refusal)
    # The one request made went to the origin given, with everything the caller gave.
    assert origins.at(origins.a, f"/{kind}/data/{name}") == [("HEAD", ALL)]


@pytest.mark.parametrize("kind", ["other", "host"])
def test_cross_origin_redirect_followed_without_the_callers_headers(
        origins: Origins, pool: urllib3.PoolManager, kind: str) -> None:
    name = f"followed-{kind}.bin"
    source = HTTPSource(f"{origins.a.url}/{kind}/data/{name}", pool=pool, headers=SECRETS,
                        redirects="any")
    assert source.size == SIZE and source.etag == ETAG
    read_all(source)
    assert origins.at(target(origins, kind), f"/data/{name}") == [
        ("HEAD", []), *[("GET", [])] * (len(SPANS) + 1)]
    # Only the redirect itself, on the origin given, saw them.
    assert origins.at(origins.a, f"/{kind}/data/{name}") == [("HEAD", ALL)]


def test_same_origin_redirect_keeps_headers_byte_for_byte(origins: Origins,
                                                          pool: urllib3.PoolManager) -> None:
    name = "same.bin"
    source = HTTPSource(f"{origins.a.url}/same/data/{name}", pool=pool, headers=SECRETS)
    assert source.url == f"{origins.a.url}/data/{name}"  # later requests go straight there
    read_all(source)
    assert origins.at(origins.a, f"/same/data/{name}") == [("HEAD", ALL)]
    assert origins.at(origins.a, f"/data/{name}") == [
        ("HEAD", ALL), *[("GET", ALL)] * (len(SPANS) + 1)]


def test_no_redirects_at_all(origins: Origins, pool: urllib3.PoolManager) -> None:
    with pytest.raises(UpstreamError, match="redirect") as refused:
        HTTPSource(f"{origins.a.url}/same/data/none.bin", pool=pool, redirects="none")
    assert refused.value.status == 302
    assert origins.at(origins.a, "/same/data/none.bin") == [("HEAD", [])]
    assert origins.at(origins.a, "/data/none.bin") == []


def test_redirect_loop_is_bounded(origins: Origins, pool: urllib3.PoolManager) -> None:
    with pytest.raises(UpstreamError, match="too many redirects"):
        HTTPSource(f"{origins.a.url}/loop/data/loop.bin", pool=pool)
    assert len(origins.at(origins.a, "/loop/data/loop.bin")) == 6  # the request, 5 redirects


def test_unknown_policy() -> None:
    with pytest.raises(ValueError, match="redirects"):
        HTTPSource("http://127.0.0.1:1/x", redirects="sometimes")  # type: ignore[arg-type]


def policy(redirects: str) -> dict[str, Any]:
    """``HTTPSource``'s options for ``redirects`` ("default": none given)."""
    return {} if redirects == "default" else {"redirects": redirects}


@pytest.mark.parametrize("redirects", ["default", "any"])
def test_later_redirect_to_another_origin(origins: Origins, pool: urllib3.PoolManager,
                                          redirects: str) -> None:
    """The ``HEAD`` is answered where it was sent; every ``GET`` is sent elsewhere."""
    name = f"later-{redirects}.bin"
    source = HTTPSource(f"{origins.a.url}/get-other/data/{name}", pool=pool, headers=SECRETS,
                        **policy(redirects))
    if redirects == "any":
        read_all(source)
        assert origins.at(origins.b, f"/data/{name}") == [("GET", [])] * (len(SPANS) + 1)
    else:
        with pytest.raises(UpstreamError, match="another origin"):
            next(iter(source.read_range(0, 100)))
        assert origins.at(origins.b, f"/data/{name}") == []
    assert origins.at(origins.a, f"/get-other/data/{name}")[0] == ("HEAD", ALL)


@pytest.mark.parametrize("redirects", ["default", "any"])
def test_through_the_middleware(origins: Origins, redirects: str) -> None:
    """A WSGI proxy on a real server: a 206 of the right bytes, or a 502 before any byte."""
    name = f"proxied-{redirects}.bin"
    app = source_app(lambda path: HTTPSource(origins.a.url + path, headers=SECRETS,
                                             **policy(redirects)))
    with serve_wsgi(app) as port:
        got = fetch(port, f"/other/data/{name}", {"Range": "bytes=1000-250999"})
    assert origins.leaked(origins.b, f"/data/{name}") == []
    if redirects == "any":
        assert (got.status, got.header("Content-Range")) == (206, f"bytes 1000-250999/{SIZE}")
        assert got.complete and got.body == V0[1000:251000]
        assert origins.at(origins.b, f"/data/{name}") == [("HEAD", []), ("GET", [])]
    else:
        assert (got.status, got.body) == (502, b"")
        assert origins.at(origins.b, f"/data/{name}") == []


# -- what the other adapters send where (docs/security.md) --


@pytest.mark.parametrize("where", ["request", "session"])
def test_fsspec_http_drops_credentials_on_another_origin(origins: Origins, where: str) -> None:
    """fsspec's HTTP file system follows redirects itself (aiohttp), on every request, from
    the URL given: aiohttp drops ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` on
    a hop to another origin and forwards every other header given (``X-Api-Key`` here), as
    docs/security.md says."""
    fsspec = pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    from rangewsgi.sources.fsspec import FsspecSource

    name = f"fsspec-{where}.bin"
    options = ({"headers": SECRETS} if where == "request"
               else {"client_kwargs": {"headers": SECRETS}})
    fs = fsspec.filesystem("http", skip_instance_cache=True, **options)
    source = FsspecSource(fs, f"{origins.a.url}/other/data/{name}", block_size=100_000)
    assert source.size == SIZE
    for start, stop in SPANS:
        assert b"".join(source.read_range(start, stop)) == V0[start:stop]
    forwarded = {tuple(names) for _, names in origins.at(origins.b, f"/data/{name}")}
    assert forwarded == {("x-api-key",)}, forwarded
    given = {tuple(names) for _, names in origins.at(origins.a, f"/other/data/{name}")}
    assert given == {tuple(ALL)}


def test_s3_never_follows_a_location(origins: Origins) -> None:
    """botocore sends each signed request to the client's endpoint and follows no
    ``Location``: a ``302`` is an error, and the other origin gets nothing."""
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    from rangewsgi.sources.s3 import S3Source

    client = boto3.client("s3", endpoint_url=origins.a.url, **CREDENTIALS,
                          config=Config(s3={"addressing_style": "path"},
                                        retries={"max_attempts": 1}))
    with pytest.raises(UpstreamError) as refused:
        S3Source(client, "other", "data/s3.bin")
    assert refused.value.status == 302
    # One signed request, to the endpoint; the ``HEAD`` of the bucket botocore makes to look
    # for the bucket's region (answered 404 here) is signed for the endpoint too.
    assert [(m, "authorization" in n) for m, n in origins.at(origins.a, "/other/data/s3.bin")
            ] == [("HEAD", True)]
    assert origins.at(origins.b, "/data/s3.bin") == []


if __name__ == "__main__":
    run(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
