"""Real clients that revalidate and resume safely, against the demo (RFC 9110 13.2.2).

The demo's directory app answers 200 only (with ETag and Last-Modified); every 304 and every
If-Range decision below is the middleware's. Each test serves its own file, so changing it
touches no other test; the demo's log shows the status each request got.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from media import make_blob, need_tool, requests_for, start_demo, wait_logged
from support import RawClient, Server

pytestmark = pytest.mark.network

SIZE = 3 * 1024 * 1024 + 321
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served")


@pytest.fixture(scope="module")
def demo(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_demo(root, tmp_path_factory.mktemp("log") / "demo.log")
    yield server
    server.stop()


def serve(root: Path, name: str, seed: int = 1) -> bytes:
    data = make_blob(root / name, SIZE, seed)
    os.utime(root / name, (1_700_000_000, 1_700_000_000))
    return data


def replace(root: Path, name: str, seed: int) -> bytes:
    """A new version of ``name``: other bytes, a later modification time."""
    data = make_blob(root / name, SIZE, seed)
    os.utime(root / name, (1_700_000_100, 1_700_000_100))
    return data


def run(cmd: list[str], cwd: Path | None = None,
        ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=TIMEOUT, check=False)
    assert done.returncode in ok, (cmd, done.returncode, done.stderr.decode(errors="replace"))
    return done


def statuses(server: Server, name: str, before: int) -> list[int]:
    """The statuses of the GET requests for ``name`` logged after the first ``before``."""
    wait_logged(server, "/" + name, lambda r: True)
    return [r.status for r in requests_for(server, "/" + name)[before:] if r.method == "GET"]


def test_curl_time_cond(demo: Server, root: Path, tmp_path: Path) -> None:
    """``curl -z FILE`` sends If-Modified-Since with the file's time: 304, nothing written."""
    name = "z.bin"
    data = serve(root, name)
    local = tmp_path / name
    local.write_bytes(data)
    os.utime(local, (1_700_000_000, 1_700_000_000))
    before = len(requests_for(demo, "/" + name))
    out = tmp_path / "out"
    run([need_tool("curl"), "-sS", "--fail", "-z", str(local), "-o", str(out),
         f"{demo.url}/{name}"])
    assert not out.exists() or out.read_bytes() == b""
    new = replace(root, name, 2)
    run([need_tool("curl"), "-sS", "--fail", "-z", str(local), "-o", str(out),
         f"{demo.url}/{name}"])
    assert out.read_bytes() == new
    assert statuses(demo, name, before) == [304, 200]


def test_curl_etag_save_and_compare(demo: Server, root: Path, tmp_path: Path) -> None:
    name = "etag.bin"
    data = serve(root, name)
    etags, out = tmp_path / "etags", tmp_path / "out"
    curl = need_tool("curl")
    before = len(requests_for(demo, "/" + name))
    run([curl, "-sS", "--fail", "--etag-save", str(etags), "-o", str(out), f"{demo.url}/{name}"])
    assert out.read_bytes() == data and etags.read_text().strip().startswith('"')
    out.unlink()
    run([curl, "-sS", "--fail", "--etag-compare", str(etags), "-o", str(out),
         f"{demo.url}/{name}"])
    assert not out.exists() or out.read_bytes() == b""
    assert statuses(demo, name, before) == [200, 304]


def test_wget_timestamping(demo: Server, root: Path, tmp_path: Path) -> None:
    """``wget -N`` fetches once, then sends If-Modified-Since and keeps its copy on 304."""
    name = "wget.bin"
    data = serve(root, name)
    wget = need_tool("wget")
    before = len(requests_for(demo, "/" + name))
    for _ in range(2):
        run([wget, "-N", "-q", "--tries=1", f"{demo.url}/{name}"], cwd=tmp_path)
        assert (tmp_path / name).read_bytes() == data
    new = replace(root, name, 3)
    run([wget, "-N", "-q", "--tries=1", f"{demo.url}/{name}"], cwd=tmp_path)
    assert (tmp_path / name).read_bytes() == new
    got = statuses(demo, name, before)
    assert 304 in got and got.count(200) == 2, got


def test_aria2c_conditional_get(demo: Server, root: Path, tmp_path: Path) -> None:
    name = "aria.bin"
    data = serve(root, name)
    local = tmp_path / name
    local.write_bytes(data)
    os.utime(local, (1_700_000_000, 1_700_000_000))
    before = len(requests_for(demo, "/" + name))
    run([need_tool("aria2c"), "--no-conf", "--conditional-get=true",
         "--allow-overwrite=true", "--dir", str(tmp_path), "--out", name, "--max-tries=1",
         "--console-log-level=warn", "--summary-interval=0", "--download-result=hide",
         f"{demo.url}/{name}"])
    assert local.read_bytes() == data
    assert statuses(demo, name, before)[-1] == 304


def test_curl_resume_with_if_range(demo: Server, root: Path, tmp_path: Path) -> None:
    """``curl -C -`` with ``If-Range`` from the saved ETag: the rest while the file is the
    same; after a change, never a mix of two versions."""
    name = "resume.bin"
    data = serve(root, name)
    curl = need_tool("curl")
    before = len(requests_for(demo, "/" + name))
    with RawClient(demo.port) as client:
        etag = client.request("/" + name, method="HEAD").header("ETag")
    assert etag is not None
    out = tmp_path / name
    have = 1_000_003
    out.write_bytes(data[:have])
    run([curl, "-sS", "--fail", "-C", "-", "-H", f"If-Range: {etag}", "-o", str(out),
         f"{demo.url}/{name}"])
    assert out.read_bytes() == data
    # The file changes between the two halves: If-Range is false, the answer is the whole
    # new file (200), which curl refuses to append (exit 33) rather than mix versions.
    new = replace(root, name, 4)
    out.write_bytes(data[:have])
    done = run([curl, "-sS", "-C", "-", "-H", f"If-Range: {etag}", "-o", str(out),
                f"{demo.url}/{name}"], ok=(33,))
    assert out.read_bytes() == data[:have], done.stderr
    fresh = tmp_path / "fresh"
    run([curl, "-sS", "--fail", "-H", f"If-Range: {etag}", "-H", f"Range: bytes={have}-",
         "-o", str(fresh), f"{demo.url}/{name}"])
    assert fresh.read_bytes() == new  # the whole new version, not its tail
    assert statuses(demo, name, before) == [206, 200, 200]
