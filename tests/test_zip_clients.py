"""The ZIP download examples over real servers, fetched by real clients.

``examples/zip_download.py`` (Flask, served by waitress) and
``examples/zip_download_fastapi.py`` (FastAPI, served by uvicorn) zip the same directory. On
each: the headers and ranges of the answer; ``curl`` killed in the middle of a download and
resumed with ``-C -``; ``aria2c -x 8`` fetching eight parts at once; headless Chromium
downloading it through a link. Every client must end with the very archive ``ZipSource``
makes for the directory, byte for byte, which ``zipfile`` then reads.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from media import chromium, need_tool
from sourceservers import load_example
from support import ROOT, RawClient, Server, free_port, start_server

from rangewsgi.sources.zip import ZipSource

pytestmark = pytest.mark.network

TOOL_TIMEOUT = 120
EXAMPLES = {"flask-waitress": ("zip_download", ["--server", "waitress"], ("flask", "waitress")),
            "fastapi-uvicorn": ("zip_download_fastapi", [], ("fastapi", "uvicorn"))}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]


def write_album(root: Path) -> dict[str, bytes]:
    """A few small files, a non-ASCII name and a 12 MiB file (eight aria2c parts)."""
    rng = random.Random(21)
    contents = {
        "readme.txt": b"hello, zip\n",
        "empty": b"",
        "photos/2024/one.bin": rng.randbytes(300_000),
        "caf\u00e9/\u65e5\u672c.txt": b"non-ASCII names: bit 11",
        "video.bin": rng.randbytes(12 * 1024 * 1024),
    }
    for name, data in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(1_700_000_000_123_456_789,) * 2)
    return contents


@pytest.fixture(scope="module")
def album(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("served") / "album"
    return root, write_album(root)


@pytest.fixture(scope="module", params=list(EXAMPLES))
def served(request: pytest.FixtureRequest, album: tuple[Path, dict[str, bytes]],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, bytes]]:
    """The example serving the album, and the archive it must give."""
    example, options, needs = EXAMPLES[request.param]
    for module in needs:
        pytest.importorskip(module)
    root, _ = album
    work = tmp_path_factory.mktemp(request.param)
    port = free_port()
    server = start_server([sys.executable, str(ROOT / "examples" / f"{example}.py"),
                           "--directory", str(root), "--port", str(port), *options], port,
                          cwd=work, log_path=work / "server.log")
    expected = b"".join(ZipSource(load_example(example).files_of(root)))
    try:
        yield server, expected
    finally:
        server.stop()


def check_archive(path: Path, contents: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert {info.filename: archive.read(info) for info in archive.infolist()} == contents


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT,
                          check=False)


def wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def test_answers_ranges_with_headers(served: tuple[Server, bytes]) -> None:
    server, expected = served
    with RawClient(server.port) as client:
        full = client.request("/download.zip")
        part = client.request("/download.zip", {"Range": "bytes=100-999"})
        etag = full.header("ETag")
        assert etag is not None and etag.startswith('"zip-')
        resumed = client.request("/download.zip", {"Range": "bytes=1000-", "If-Range": etag})
        stale = client.request("/download.zip", {"Range": "bytes=1000-", "If-Range": '"x"'})
        head = client.request("/download.zip", method="HEAD")
        client.assert_idle(0.05)
    assert full.status == 200 and full.body == expected
    assert full.header("Content-Type") == "application/zip"
    assert full.header("Content-Disposition") == (
        "attachment; filename=\"album.zip\"; filename*=UTF-8''album.zip")
    assert full.header("Accept-Ranges") == "bytes"
    assert part.status == 206 and part.body == expected[100:1000]
    assert part.header("Content-Range") == f"bytes 100-999/{len(expected)}"
    assert resumed.status == 206 and resumed.body == expected[1000:]
    assert stale.status == 200 and stale.body == expected
    assert head.status == 200 and head.body == b""
    assert head.header("Content-Length") == str(len(expected)) and head.header("ETag") == etag


def test_curl_resumes_an_interrupted_download(served: tuple[Server, bytes],
                                              album: tuple[Path, dict[str, bytes]],
                                              tmp_path: Path) -> None:
    curl = need_tool("curl")
    server, expected = served
    out = tmp_path / "album.zip"
    url = f"{server.url}/download.zip"
    # A slow download, killed once a first MiB has arrived: a dropped connection.
    slow = subprocess.Popen([curl, "-sS", "--limit-rate", "1M", "-o", str(out), url])
    try:
        wait_for(lambda: out.exists() and out.stat().st_size >= 1024 * 1024, "1 MiB")
    finally:
        slow.kill()
        slow.wait(TOOL_TIMEOUT)
    assert 0 < out.stat().st_size < len(expected)
    done = run([curl, "-sS", "--fail", "-C", "-", "-o", str(out), url], tmp_path)
    assert done.returncode == 0, done.stderr  # exit 33 if the server had answered 200
    assert out.read_bytes() == expected
    check_archive(out, album[1])


def test_aria2c_splits_the_download(served: tuple[Server, bytes],
                                    album: tuple[Path, dict[str, bytes]],
                                    tmp_path: Path) -> None:
    aria2c = need_tool("aria2c")
    server, expected = served
    done = run([aria2c, "-x", "8", "-s", "8", "-k", "1M", "--file-allocation=none",
                "--console-log-level=warn", "--summary-interval=0", "-d", str(tmp_path),
                "-o", "album.zip", f"{server.url}/download.zip"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "album.zip").read_bytes() == expected, server.log()[-2000:]
    check_archive(tmp_path / "album.zip", album[1])


# Click a link to the archive, as a user would: Chromium downloads it (attachment).
CLICK_JS = """
const link = document.createElement('a');
link.href = arguments[0];
document.body.appendChild(link);
link.click();
"""


@pytest.mark.slow
def test_chromium_downloads_the_archive(served: tuple[Server, bytes],
                                        album: tuple[Path, dict[str, bytes]],
                                        tmp_path: Path) -> None:
    server, expected = served
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chromium(CHROMIUM_FLAGS, tmp_path, 30) as driver:
        # DevTools: headless Chromium saves downloads only where it is told to.
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": str(downloads)})
        driver.get(f"{server.url}/no-page-here")  # any page of the same origin
        driver.execute_script(CLICK_JS, "/download.zip")
        target = downloads / "album.zip"

        def finished() -> bool:
            names = {path.name for path in downloads.iterdir()}
            return "album.zip" in names and not any(n.endswith(".crdownload") for n in names)

        wait_for(finished, "the download")
    assert target.read_bytes() == expected
    check_archive(target, album[1])
