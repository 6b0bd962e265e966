"""Replicas that agree on validators: ``file_validators="content"`` over real servers.

Two replicas serve two copies of one file with different modification times: ``a`` is the
WSGI middleware on gunicorn, ``b`` the ASGI middleware on uvicorn (the app sends the file with
``http.response.pathsend``). Each replica records every exchange (request validators, status,
answer fields) in a JSON-lines file the test owns; that is how a client's or Varnish's backend
requests are checked, not by any tool's log format.

Checked: both replicas give one strong ``ETag`` and one ``Repr-Digest`` (RFC 9530 3) on 200,
206 (single and multipart) and HEAD; each answers ``If-None-Match`` (304) and ``If-Range``
(206) for the other's tag; a download resumed with ``curl -C -`` across the replicas and an
``aria2c -x 8`` download verify against ``Repr-Digest`` (tests/digest_verify.py); Varnish
(Debian's ``varnish`` package) fetches from one replica and revalidates against the other with
a ``304``. The same cases with ``file_validators=True`` (the default: tags from modification
time and size) show what ``"content"`` changes: there the replicas disagree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import digest_verify
import pytest
from server_configs.launch import require
from support import ROOT, RawClient, RawResponse, Server, free_port, parse_multipart, start_server

pytestmark = pytest.mark.network

SIZE = 12 * 1024 * 1024 + 4321  # several aria2c pieces, not a multiple of any
OLD_NS = 1_600_000_000 * 10**9  # modification times long settled (the digest is kept)
TOOL_TIMEOUT = 120.0
WAIT = 30.0  # bound of every polling loop, seconds
BIN = Path(sys.executable).parent

# The replica applications, written into each test's directory. The records are written
# before the answer's first byte goes out: a client that has its answer finds its record.
RECORDER = '''
import json, os, threading
_LOCK = threading.Lock()
FILE = os.environ["REPLICA_FILE"]
MODE = {"content": "content", "true": True, "false": False}[os.environ["REPLICA_VALIDATORS"]]
_SEEN = ("range", "if-range", "if-none-match", "if-modified-since", "if-match")


def record(method, fields, status, headers):
    answer = {k.lower(): v for k, v in headers}
    line = {"method": method, "status": int(str(status).split()[0]),
            "request": {k: fields[k] for k in _SEEN if k in fields},
            "etag": answer.get("etag"), "repr-digest": answer.get("repr-digest")}
    with _LOCK, open(os.environ["REPLICA_RECORDS"], "a") as out:
        out.write(json.dumps(line) + "\\n")
'''

WSGI_REPLICA = RECORDER + '''
from rangewsgi import RangeMiddleware


def inner(environ, start_response):
    file = open(FILE, "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](file, 1 << 16)


ranged = RangeMiddleware(inner, file_validators=MODE)


def app(environ, start_response):
    fields = {k[5:].lower().replace("_", "-"): v for k, v in environ.items()
              if k.startswith("HTTP_")}

    def recording(status, headers, exc_info=None):
        record(environ["REQUEST_METHOD"], fields, status, headers)
        return start_response(status, headers, exc_info)

    return ranged(environ, recording)
'''

ASGI_REPLICA = RECORDER + '''
from rangewsgi.asgi import RangeMiddleware


async def inner(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    await send({"type": "http.response.pathsend", "path": FILE})


ranged = RangeMiddleware(inner, file_validators=MODE)


async def app(scope, receive, send):
    fields = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

    async def recording(message):
        if message["type"] == "http.response.start":
            headers = [(k.decode("latin-1"), v.decode("latin-1"))
                       for k, v in message.get("headers", [])]
            record(scope["method"], fields, message["status"], headers)
        await send(message)

    await ranged(scope, receive, recording)
'''

# Varnish in front: the backend is chosen per request by X-Replica; an object stays fresh for
# one second and is kept an hour after that for revalidation (a conditional backend request
# with the stored ETag), with no grace: a request for a stale object waits for that fetch.
VCL = """vcl 4.1;
backend a {{ .host = "127.0.0.1"; .port = "{a}"; }}
backend b {{ .host = "127.0.0.1"; .port = "{b}"; }}

sub vcl_recv {{
    return (hash);
}}

sub vcl_backend_fetch {{
    if (bereq.http.X-Replica == "b") {{
        set bereq.backend = b;
    }} else {{
        set bereq.backend = a;
    }}
}}

sub vcl_backend_response {{
    set beresp.ttl = 1s;
    set beresp.grace = 0s;
    set beresp.keep = 1h;
}}
"""


@dataclass
class Replica:
    server: Server
    file: Path
    records_path: Path

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"{self.server.url}/file.bin"

    def records(self) -> list[dict[str, Any]]:
        if not self.records_path.exists():
            return []
        return [json.loads(line) for line in self.records_path.read_text().splitlines()]

    def get(self, headers: dict[str, str] | None = None, method: str = "GET") -> RawResponse:
        with RawClient(self.port) as client:
            return client.request("/file.bin", headers, method)


def make_data(size: int) -> bytes:
    """Bytes without a repeating pattern (an offset error shows)."""
    return os.urandom(size)


def place(directory: Path, data: bytes, mtime_ns: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "file.bin"
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def start_replica(kind: str, workdir: Path, file: Path, mode: str) -> Replica:
    workdir.mkdir(parents=True, exist_ok=True)
    module = f"replica_{kind}"
    (workdir / f"{module}.py").write_text(WSGI_REPLICA if kind == "wsgi" else ASGI_REPLICA)
    port = free_port()
    records = workdir / "records.jsonl"
    env = {"REPLICA_FILE": str(file), "REPLICA_RECORDS": str(records),
           "REPLICA_VALIDATORS": mode, "PYTHONPATH": f"{workdir}{os.pathsep}{ROOT}"}
    if kind == "wsgi":
        cmd = [str(BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}",
               "--chdir", str(workdir), f"{module}:app"]
    else:
        cmd = [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(port),
               "--lifespan", "off", "--no-access-log", "--app-dir", str(workdir),
               f"{module}:app"]
    server = start_server(cmd, port, env=env, cwd=workdir, log_path=workdir / "server.log")
    return Replica(server, file, records)


@dataclass
class Pair:
    a: Replica
    b: Replica
    data: bytes
    mode: str


def start_pair(root: Path, data: bytes, mode: str) -> Pair:
    """Replica ``a`` (WSGI, gunicorn) and ``b`` (ASGI, uvicorn), each with its own copy of
    the bytes under another modification time."""
    a = start_replica("wsgi", root / "a", place(root / "a" / "data", data, OLD_NS), mode)
    try:
        b = start_replica("asgi", root / "b",
                          place(root / "b" / "data", data, OLD_NS + 86_400 * 10**9), mode)
    except BaseException:
        a.server.stop()
        raise
    return Pair(a, b, data, mode)


@pytest.fixture(scope="module")
def data() -> bytes:
    return make_data(SIZE)


def _pair(mode: str, data: bytes, factory: pytest.TempPathFactory) -> Iterator[Pair]:
    started = start_pair(factory.mktemp(f"replicas-{mode}"), data, mode)
    yield started
    started.a.server.stop()
    started.b.server.stop()


@pytest.fixture(scope="module")
def content_pair(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Replicas with file_validators="content"."""
    yield from _pair("content", data, tmp_path_factory)


@pytest.fixture(scope="module")
def true_pair(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Replicas with file_validators=True, the default."""
    yield from _pair("true", data, tmp_path_factory)


@pytest.fixture(params=["content", "true"])
def pair(request: pytest.FixtureRequest) -> Pair:
    """Each case with both modes: what "content" changes."""
    found: Pair = request.getfixturevalue(f"{request.param}_pair")
    return found


def run(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(cmd, capture_output=True, timeout=TOOL_TIMEOUT, check=False)
    assert done.returncode == 0, (cmd, done.returncode, done.stderr.decode(errors="replace"))
    return done


def header_file_fields(path: Path) -> list[dict[str, str]]:
    """The header sections curl wrote with ``-D``, one dict per response (lower-case)."""
    sections: list[dict[str, str]] = []
    for line in path.read_text("latin-1").splitlines():
        if line.startswith("HTTP/"):
            sections.append({":status": line.split()[1]})
        elif ":" in line and sections:
            name, _, value = line.partition(":")
            sections[-1][name.strip().lower()] = value.strip()
    return sections


# -- the replicas agree (or, with file_validators=True, do not) -------------------------------

def test_replicas_validators(pair: Pair) -> None:
    a, b = pair.a.get(), pair.b.get()
    assert (a.status, b.status) == (200, 200)
    assert a.body == pair.data and b.body == pair.data
    if pair.mode == "true":
        # The default, unchanged: a tag from modification time and size, no Repr-Digest.
        for replica, answer in ((pair.a, a), (pair.b, b)):
            info = replica.file.stat()
            assert answer.header("ETag") == f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
            assert answer.header("Repr-Digest") is None
        assert a.header("ETag") != b.header("ETag")
        return
    etag = a.header("ETag")
    assert etag is not None and etag.startswith('"sha256-')
    assert b.header("ETag") == etag
    digest = a.header("Repr-Digest")
    assert digest is not None and b.header("Repr-Digest") == digest
    assert digest_verify.matches(pair.a.file, digest)
    assert a.header("Last-Modified") != b.header("Last-Modified")  # as today: from mtime


def test_digest_on_head_and_every_206(content_pair: Pair) -> None:
    pair = content_pair
    digest = pair.a.get().header("Repr-Digest")
    assert digest is not None and digest_verify.matches(pair.a.file, digest)
    for replica in (pair.a, pair.b):
        head = replica.get(method="HEAD")
        assert head.status == 200 and head.body == b""
        assert head.header("Repr-Digest") == digest
        single = replica.get({"Range": "bytes=100-199"})
        assert single.status == 206 and single.body == pair.data[100:200]
        assert single.header("Repr-Digest") == digest  # the representation's, not the part's
        multi = replica.get({"Range": "bytes=0-9,-10"})
        assert multi.status == 206 and multi.header("Repr-Digest") == digest
        parts = parse_multipart(multi.body, multi.header("Content-Type") or "")
        assert [body for _, body in parts] == [pair.data[:10], pair.data[-10:]]


def test_if_none_match_across_replicas(pair: Pair) -> None:
    for first, other in ((pair.a, pair.b), (pair.b, pair.a)):
        etag = first.get(method="HEAD").header("ETag")
        assert etag is not None
        answer = other.get({"If-None-Match": etag})
        if pair.mode == "content":
            assert answer.status == 304 and answer.body == b""
            assert answer.header("ETag") == etag
        else:
            assert answer.status == 200 and answer.body == pair.data


def test_if_range_across_replicas(pair: Pair) -> None:
    for first, other in ((pair.a, pair.b), (pair.b, pair.a)):
        etag = first.get(method="HEAD").header("ETag")
        assert etag is not None
        answer = other.get({"Range": "bytes=5000000-", "If-Range": etag})
        if pair.mode == "content":
            assert answer.status == 206 and answer.body == pair.data[5_000_000:]
            assert answer.header("Content-Range") == f"bytes 5000000-{SIZE - 1}/{SIZE}"
        else:
            assert answer.status == 200 and answer.body == pair.data  # the whole file again


def test_http_source_passes_the_upstream_digest_on(content_pair: Pair) -> None:
    """A proxy app (HTTPSource) in front of a replica sends the upstream's Repr-Digest on its
    own 206: the digest of the representation travels with it."""
    pytest.importorskip("urllib3")
    from werkzeug.test import Client

    from rangewsgi import RangeMiddleware
    from rangewsgi.sources.http import HTTPSource

    pair = content_pair
    digest = pair.a.get(method="HEAD").header("Repr-Digest")

    def proxy(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return HTTPSource(pair.b.url)

    part = Client(RangeMiddleware(proxy)).get("/", headers={"Range": "bytes=-1000"})
    assert part.status_code == 206 and part.data == pair.data[-1000:]
    assert digest is not None and part.headers["Repr-Digest"] == digest


# -- clients, verified against Repr-Digest ------------------------------------------------------

def test_curl_resume_across_replicas_verified(content_pair: Pair, tmp_path: Path) -> None:
    """The first part from one replica, the rest with ``curl -C -`` from the other."""
    pair = content_pair
    require("curl")
    out, heads = tmp_path / "file.bin", tmp_path / "heads.txt"
    run(["curl", "-sS", "--fail", "-r", "0-3999999", "-o", str(out), pair.a.url])
    assert out.stat().st_size == 4_000_000
    before = len(pair.b.records())
    run(["curl", "-sS", "--fail", "-C", "-", "-D", str(heads), "-o", str(out), pair.b.url])
    [resumed] = header_file_fields(heads)
    assert resumed[":status"] == "206"
    assert resumed["content-range"] == f"bytes 4000000-{SIZE - 1}/{SIZE}"
    assert digest_verify.matches(out, resumed["repr-digest"])
    assert out.read_bytes() == pair.data
    [logged] = pair.b.records()[before:]
    assert (logged["request"].get("range"), logged["status"]) == ("bytes=4000000-", 206)


def test_curl_resume_of_a_wrong_prefix_fails_verification(content_pair: Pair,
                                                          tmp_path: Path) -> None:
    """The verifier is not a formality: a resume onto bytes of another file is caught."""
    pair = content_pair
    require("curl")
    out, heads = tmp_path / "file.bin", tmp_path / "heads.txt"
    out.write_bytes(bytes(4_000_000))
    run(["curl", "-sS", "--fail", "-C", "-", "-D", str(heads), "-o", str(out), pair.a.url])
    [resumed] = header_file_fields(heads)
    assert resumed[":status"] == "206"
    assert not digest_verify.matches(out, resumed["repr-digest"])


def test_aria2c_segments_verified(content_pair: Pair, tmp_path: Path) -> None:
    pair = content_pair
    require("aria2c")
    before = len(pair.a.records())
    run(["aria2c", "--no-conf", "-x", "8", "-s", "8", "-k", "1M", "--dir", str(tmp_path),
         "--out", "file.bin", "--file-allocation=none", "--allow-overwrite=true",
         "--auto-file-renaming=false", "--max-tries=1", "--summary-interval=0",
         "--console-log-level=warn", "--download-result=hide", pair.a.url])
    logged = pair.a.records()[before:]
    partial = [r for r in logged if r["status"] == 206]
    assert len(partial) >= 2, logged
    digests = {r["repr-digest"] for r in logged}
    assert len(digests) == 1, logged  # one digest on the 200 and on every 206
    [digest] = digests
    assert digest_verify.matches(tmp_path / "file.bin", digest)


# -- a CDN in front: Varnish revalidates against the other replica -----------------------------

@dataclass
class Varnish:
    server: Server

    def get(self, replica: str) -> RawResponse:
        with RawClient(self.server.port) as client:
            return client.request("/file.bin", {"X-Replica": replica})


def start_varnish(workdir: Path, a: int, b: int) -> Varnish:
    """varnishd in the foreground on a free port, its working directory (-n) in ``workdir``;
    ``-j none``: no privilege separation, so the VCL in a private directory can be read."""
    require("varnishd", "varnishd (Debian package varnish)")
    varnishd = "varnishd"
    workdir.mkdir(parents=True, exist_ok=True)
    vcl = workdir / "replicas.vcl"
    vcl.write_text(VCL.format(a=a, b=b))
    port = free_port()
    cmd = [varnishd, "-F", "-j", "none", "-n", str(workdir / "varnish"), "-T", "none",
           "-a", f"127.0.0.1:{port}", "-f", str(vcl), "-s", "malloc,256m",
           "-p", "default_ttl=1", "-p", "http_resp_size=64k"]
    return Varnish(start_server(cmd, port, log_path=workdir / "varnishd.log", timeout=60))


def revalidated(varnish: Varnish, replica: Replica, before: int) -> dict[str, Any]:
    """Ask Varnish (which sends a stale object's revalidation to ``replica``) until the
    replica records a backend request, polling for at most ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        answer = varnish.get("b")
        assert answer.status == 200 and len(answer.body) == SIZE
        new = replica.records()[before:]
        if new:
            assert len(new) == 1, new
            return new[0]
        time.sleep(0.1)  # the object is fresh for 1 s: poll until it is stale
    raise AssertionError("Varnish never went back to the other replica")


def test_varnish_revalidates_against_other_replica(pair: Pair, tmp_path: Path) -> None:
    varnish = start_varnish(tmp_path, pair.a.port, pair.b.port)
    try:
        before_a, before_b = len(pair.a.records()), len(pair.b.records())
        first = varnish.get("a")
        assert first.status == 200 and first.body == pair.data
        [fetched] = pair.a.records()[before_a:]
        assert fetched["status"] == 200 and fetched["etag"] == first.header("ETag")
        record = revalidated(varnish, pair.b, before_b)
        assert record["request"].get("if-none-match") == fetched["etag"]
        if pair.mode == "content":
            assert record["status"] == 304
        else:
            assert record["status"] == 200  # another tag: the whole file again
        again = varnish.get("b")
        assert again.status == 200 and again.body == pair.data
    finally:
        varnish.server.stop()
