"""Real download tools and HTTP libraries against the demo server (``python -m rangewsgi``).

Each test checks the bytes the client ended up with against the source file, and the demo's
request log for the ``Range`` header the client sent and the status it got (RFC 9110
section 14.2 Range, 15.3.7 206 Partial Content, 14.4 Content-Range).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from media import (
    LoggedRequest,
    make_blob,
    make_mp4_moov_at_end,
    mp4_atoms,
    need_module,
    need_tool,
    requests_for,
    start_demo,
)
from support import RawClient, Server, parse_multipart

pytestmark = pytest.mark.network

BLOB = "blob.bin"
BLOB_SIZE = 24 * 1024 * 1024 + 12345  # not a multiple of any client's piece size
CLIP = "clip.mp4"
TOOL_TIMEOUT = 60.0


@dataclass(frozen=True)
class Files:
    root: Path
    blob: bytes
    clip: bytes


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("served")
    blob = make_blob(root / BLOB, BLOB_SIZE)
    make_mp4_moov_at_end(root / CLIP, "h264")
    return Files(root, blob, (root / CLIP).read_bytes())


@pytest.fixture(scope="module")
def demo(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_demo(files.root, tmp_path_factory.mktemp("log") / "demo.log")
    yield server
    server.stop()


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=TOOL_TIMEOUT, check=False)
    assert done.returncode == 0, (cmd, done.returncode, done.stderr.decode(errors="replace"))
    return done


def logged_since(server: Server, path: str, before: int) -> list[LoggedRequest]:
    """The requests for ``path`` logged after the first ``before`` ones."""
    return requests_for(server, path)[before:]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- curl ----------------------------------------------------------------------------------

def test_curl_range(demo: Server, files: Files, tmp_path: Path) -> None:
    before = len(requests_for(demo, "/" + BLOB))
    out = tmp_path / "part"
    run([need_tool("curl"), "-sS", "--fail", "-r", "1000-1999", "-o", str(out),
         f"{demo.url}/{BLOB}"])
    assert out.read_bytes() == files.blob[1000:2000]
    [req] = logged_since(demo, "/" + BLOB, before)
    assert (req.range, req.status) == ("bytes=1000-1999", 206)


def test_curl_multiple_ranges(demo: Server, files: Files, tmp_path: Path) -> None:
    before = len(requests_for(demo, "/" + BLOB))
    out, head = tmp_path / "body", tmp_path / "headers"
    run([need_tool("curl"), "-sS", "--fail", "-r", "0-99,5000-5099,-10", "-D", str(head),
         "-o", str(out), f"{demo.url}/{BLOB}"])
    headers = dict(line.split(": ", 1) for line in
                   head.read_text("latin-1").splitlines()[1:] if ": " in line)
    parts = parse_multipart(out.read_bytes(), headers["Content-Type"])
    n = len(files.blob)
    expected = [(0, 99), (5000, 5099), (n - 10, n - 1)]
    assert [p[0]["content-range"] for p in parts] == [f"bytes {a}-{b}/{n}" for a, b in expected]
    assert [p[1] for p in parts] == [files.blob[a:b + 1] for a, b in expected]
    [req] = logged_since(demo, "/" + BLOB, before)
    assert (req.range, req.status) == ("bytes=0-99,5000-5099,-10", 206)


def test_curl_resume(demo: Server, files: Files, tmp_path: Path) -> None:
    before = len(requests_for(demo, "/" + BLOB))
    out = tmp_path / BLOB
    have = 3 * 1024 * 1024 + 7
    out.write_bytes(files.blob[:have])
    # curl -C - asks for the rest (bytes=N-) and exits 33 if the server answers 200.
    run([need_tool("curl"), "-sS", "--fail", "-C", "-", "-o", str(out), f"{demo.url}/{BLOB}"])
    assert sha256(out.read_bytes()) == sha256(files.blob)
    [req] = logged_since(demo, "/" + BLOB, before)
    assert (req.range, req.status) == (f"bytes={have}-", 206)


# --- wget ----------------------------------------------------------------------------------

def test_wget_continue(demo: Server, files: Files, tmp_path: Path) -> None:
    before = len(requests_for(demo, "/" + BLOB))
    have = 5 * 1024 * 1024 + 3
    (tmp_path / BLOB).write_bytes(files.blob[:have])
    run([need_tool("wget"), "-c", "-q", "--tries=1", "--timeout=30", f"{demo.url}/{BLOB}"],
        cwd=tmp_path)
    assert sha256((tmp_path / BLOB).read_bytes()) == sha256(files.blob)
    assert not (tmp_path / f"{BLOB}.1").exists()
    [req] = logged_since(demo, "/" + BLOB, before)
    assert (req.range, req.status) == (f"bytes={have}-", 206)


# --- aria2c --------------------------------------------------------------------------------

def test_aria2c_parallel_segments(demo: Server, files: Files, tmp_path: Path) -> None:
    before = len(requests_for(demo, "/" + BLOB))
    run([need_tool("aria2c"), "--no-conf", "-x", "8", "-s", "8", "-k", "1M",
         "--dir", str(tmp_path), "--out", BLOB, "--file-allocation=none",
         "--allow-overwrite=true", "--auto-file-renaming=false", "--max-tries=1",
         "--summary-interval=0", "--console-log-level=warn", "--download-result=hide",
         f"{demo.url}/{BLOB}"])
    assert sha256((tmp_path / BLOB).read_bytes()) == sha256(files.blob)
    logged = logged_since(demo, "/" + BLOB, before)
    partial = [r for r in logged if r.status == 206]
    assert len(partial) >= 2, logged
    assert all(r.range and r.range.startswith("bytes=") for r in partial), logged
    assert {r.status for r in logged} <= {200, 206}, logged


# --- ffprobe -------------------------------------------------------------------------------

def test_ffprobe_reads_moov_at_end_through_a_range(demo: Server, files: Files) -> None:
    before = len(requests_for(demo, "/" + CLIP))
    done = run([need_tool("ffprobe"), "-v", "error", "-show_entries",
                "format=duration,size:stream=codec_name", "-of", "json", f"{demo.url}/{CLIP}"])
    info = json.loads(done.stdout)
    assert int(info["format"]["size"]) == len(files.clip)
    assert float(info["format"]["duration"]) == pytest.approx(6, abs=0.2)
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    logged = logged_since(demo, "/" + CLIP, before)
    assert (logged[0].range, logged[0].status) == ("bytes=0-", 206), logged
    # The moov box sits after mdat: ffprobe jumps there with a new "bytes=<offset>-".
    moov = mp4_atoms(files.root / CLIP)["moov"]
    assert any(r.status == 206 and r.first_pos == moov for r in logged[1:]), (moov, logged)


# --- Python HTTP libraries -----------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def with_requests(url: str, range_value: str) -> Answer:
    requests = need_module("requests")
    r = requests.get(url, headers={"Range": range_value}, timeout=30)
    return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)


def with_httpx(url: str, range_value: str) -> Answer:
    httpx = need_module("httpx")
    with httpx.Client(timeout=30) as client:
        r = client.get(url, headers={"Range": range_value})
    return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)


CLIENTS: dict[str, Callable[[str, str], Answer]] = {
    "requests": with_requests, "httpx": with_httpx}


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize(("range_value", "first", "last"), [
    ("bytes=100-199", 100, 199),
    ("bytes=-500", BLOB_SIZE - 500, BLOB_SIZE - 1),
    ("bytes=20000000-", 20000000, BLOB_SIZE - 1),
])
def test_python_client_single_range(demo: Server, files: Files, client: str,
                                    range_value: str, first: int, last: int) -> None:
    answer = CLIENTS[client](f"{demo.url}/{BLOB}", range_value)
    assert answer.status == 206
    assert answer.headers["content-range"] == f"bytes {first}-{last}/{BLOB_SIZE}"
    assert answer.headers["content-length"] == str(last - first + 1)
    assert answer.body == files.blob[first:last + 1]


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_python_client_multiple_ranges(demo: Server, files: Files, client: str) -> None:
    answer = CLIENTS[client](f"{demo.url}/{BLOB}", "bytes=0-9, 1000-1009, -5")
    assert answer.status == 206
    assert answer.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert answer.headers["content-length"] == str(len(answer.body))
    parts = parse_multipart(answer.body, answer.headers["content-type"])
    expected = [(0, 9), (1000, 1009), (BLOB_SIZE - 5, BLOB_SIZE - 1)]
    assert [p[0]["content-range"] for p in parts] == [
        f"bytes {a}-{b}/{BLOB_SIZE}" for a, b in expected]
    assert [p[0]["content-type"] for p in parts] == ["application/octet-stream"] * 3
    assert [p[1] for p in parts] == [files.blob[a:b + 1] for a, b in expected]


# --- Safari's first probe ------------------------------------------------------------------

def test_safari_style_two_byte_probe(demo: Server, files: Files) -> None:
    before = len(requests_for(demo, "/" + CLIP))
    with RawClient(demo.port) as client:
        probe = client.request("/" + CLIP, {"Range": "bytes=0-1"})
        assert probe.status == 206
        assert probe.body == files.clip[:2]
        assert probe.header("Content-Range") == f"bytes 0-1/{len(files.clip)}"
        assert probe.header("Content-Length") == "2"
        # Nothing follows the 2 bytes on the wire (the demo's server then closes the connection).
        client.assert_idle()
    logged = logged_since(demo, "/" + CLIP, before)
    assert [(r.range, r.status) for r in logged] == [("bytes=0-1", 206)]
