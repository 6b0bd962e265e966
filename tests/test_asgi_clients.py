"""Real clients against the ASGI demo: ``python -m rangewsgi --asgi DIR`` on uvicorn.

The demo's ASGI file app answers plain 200s; the ASGI ``RangeMiddleware`` turns them into
206s, and ``--no-ranges`` leaves them alone. Headless Chromium plays and seeks (RFC 9110
14.2 Range, 15.3.7 206), curl resumes, aria2c splits, ffprobe jumps to a moov box at the
end. Each test checks the bytes the client got, and the demo's log for the Range it sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_scripts import CHROMIUM_FLAGS, FETCH_JS, PLAY_JS
from media import (
    MP4_CODECS,
    LoggedRequest,
    chromium,
    make_blob,
    make_long_wav,
    make_mp4_moov_at_end,
    make_webm_audio,
    make_webm_video,
    mp4_atoms,
    need_module,
    need_tool,
    requests_for,
    wait_logged,
    wav_offset,
)
from support import Server, free_port, start_server

pytestmark = pytest.mark.network

BLOB = "blob.bin"
BLOB_SIZE = 24 * 1024 * 1024 + 12345  # not a multiple of any client's piece size
CLIP = "clip.mp4"  # H.264 and AAC, moov after mdat
SHORT_MEDIA = ["audio.weba", "video.webm", CLIP]  # .weba: WebM audio
LONG_WAV = "long.wav"
BLANK = "/blank-page"  # a same-origin page with no players of its own
SCRIPT_TIMEOUT = 30
TOOL_TIMEOUT = 60.0

# One line of the demo's log: request, then status, body bytes sent, and how it ended
# (", client stopped reading after N bytes", ", aborted: ...", ...).
LINE = re.compile(r"^(GET|HEAD) (\S+) Range=(.*?) -> (\d{3}) (\d+)(?: of (\d+))? bytes"
                  r"(, .*)?$", re.MULTILINE)


def start_asgi_demo(root: Path, log_path: Path, *, ranges: bool = True) -> Server:
    """Run ``python -m rangewsgi --asgi ROOT`` (or with ``--no-ranges``) on a free port."""
    need_module("uvicorn")
    port = free_port()
    cmd = [sys.executable, "-m", "rangewsgi", "--asgi", str(root), "--host", "127.0.0.1",
           "--port", str(port)]
    if not ranges:
        cmd.append("--no-ranges")
    return start_server(cmd, port, log_path=log_path)


def sent_lines(server: Server, path: str) -> list[tuple[str, int, int, str]]:
    """(Range, status, body bytes sent, how it ended) of each logged request for ``path``."""
    return [(rng, int(status), int(count), aborted)
            for _, target, rng, status, count, _, aborted in LINE.findall(server.log())
            if target.split("?")[0] == path]


def range_length(range_value: str, size: int) -> int:
    """The length of the one range ``bytes=A-B``, ``bytes=A-`` or ``bytes=-N`` of ``size``."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_value)
    assert match, range_value
    first, last = match.groups()
    if not first:
        return min(int(last), size)
    return min(int(last) if last else size - 1, size - 1) - int(first) + 1


def assert_whole_ranges(server: Server, path: str, size: int) -> None:
    """Every 206 for ``path`` that was not cut short carried exactly its range's bytes."""
    lines = sent_lines(server, path)
    whole = [(rng, count) for rng, status, count, aborted in lines
             if status == 206 and not aborted]
    assert whole, lines
    assert all(count == range_length(rng, size) for rng, count in whole), lines
    assert all(count <= range_length(rng, size) for rng, status, count, _ in lines
               if status == 206), lines


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=TOOL_TIMEOUT, check=False)


# --- served files and servers ----------------------------------------------------------------

@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served directory; the fixtures below add their files to it as they are needed."""
    return tmp_path_factory.mktemp("served")


@pytest.fixture(scope="module")
def blob(root: Path) -> bytes:
    return make_blob(root / BLOB, BLOB_SIZE)


@pytest.fixture(scope="module")
def clip(root: Path) -> bytes:
    make_mp4_moov_at_end(root / CLIP, "h264")
    return (root / CLIP).read_bytes()


@pytest.fixture(scope="module")
def media(root: Path, clip: bytes) -> Path:
    make_webm_audio(root / "audio.weba")
    make_webm_video(root / "video.webm")
    make_long_wav(root / LONG_WAV)
    return root


@pytest.fixture(scope="module")
def ranged(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_asgi_demo(root, tmp_path_factory.mktemp("log") / "ranged.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_asgi_demo(root, tmp_path_factory.mktemp("log") / "plain.log", ranges=False)
    yield server
    server.stop()


# --- Chromium --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(CHROMIUM_FLAGS, tmp_path_factory.mktemp("chromium"), SCRIPT_TIMEOUT) as driver:
        yield driver


def play(driver: Any, server: Server, name: str, fraction: float,
         to_end: bool) -> dict[str, Any]:
    """Load ``name`` in a fresh media element, seek to ``fraction`` of it, maybe play on."""
    driver.get(server.url + BLANK)
    result: dict[str, Any] = driver.execute_async_script(
        PLAY_JS, "/" + name, fraction, to_end, SCRIPT_TIMEOUT * 1000 - 5000)
    return result


def skip_unless_playable(driver: Any, server: Server, name: str) -> None:
    if name.endswith(".mp4"):
        driver.get(server.url + BLANK)
        answer = driver.execute_script(
            "return document.createElement('video').canPlayType(arguments[0]);",
            MP4_CODECS["h264"][2])
        if answer != "probably":
            pytest.skip(f"this Chromium build does not play {name}")


def let_go(driver: Any) -> None:
    """Leave the page: the browser closes its media connections, so they end and are logged."""
    driver.get("about:blank")


@pytest.mark.slow
@pytest.mark.parametrize("name", SHORT_MEDIA)
def test_chromium_seeks_near_the_end_and_finishes(browser: Any, ranged: Server, media: Path,
                                                  name: str) -> None:
    skip_unless_playable(browser, ranged, name)
    before = len(requests_for(ranged, "/" + name))
    result = play(browser, ranged, name, 0.8, to_end=True)
    assert result["why"] == "ended", result
    duration = result["duration"]
    assert duration > 2
    [[start, end]] = result["seekable"]  # all of it: one range from 0 to the end
    assert start == 0 and end == pytest.approx(duration, abs=0.1), result
    assert result["seekedAt"] == pytest.approx(result["target"], abs=0.5), result
    assert result["currentTime"] == pytest.approx(duration, abs=0.1), result
    let_go(browser)
    first = wait_logged(ranged, "/" + name, lambda r: r.range == "bytes=0-")
    logged = requests_for(ranged, "/" + name)[before:]
    assert first and all(r.status == 206 for r in first), logged
    # Chromium revalidates a range it has cached (If-None-Match with Range): a 304 for it.
    assert {r.status for r in logged} <= {206, 304}, logged
    assert_whole_ranges(ranged, "/" + name, (media / name).stat().st_size)


@pytest.mark.slow
def test_chromium_long_wav_seek_sends_a_mid_file_range(browser: Any, ranged: Server,
                                                       media: Path) -> None:
    before = len(requests_for(ranged, "/" + LONG_WAV))
    result = play(browser, ranged, LONG_WAV, 0.5, to_end=False)
    assert result["why"] == "seeked", result
    assert result["duration"] == pytest.approx(20 * 60, abs=1)
    assert result["seekedAt"] == pytest.approx(600, abs=1), result
    [[start, end]] = result["seekable"]
    assert (start, end) == (0, pytest.approx(1200, abs=1))
    # 10:00 lies past what the first request preloaded: a new "bytes=N-" just below it.
    target = wav_offset(600)
    let_go(browser)

    def mid_file(r: LoggedRequest) -> bool:
        return r.first_pos is not None and target - (1 << 20) <= r.first_pos <= target

    mid = wait_logged(ranged, "/" + LONG_WAV, mid_file)
    logged = requests_for(ranged, "/" + LONG_WAV)[before:]
    assert mid and all(r.status == 206 for r in mid), logged
    opened = [r.status for r in logged if r.range == "bytes=0-"]
    assert opened and set(opened) == {206}, logged

    # The same region fetched by the browser's own network stack: the source's bytes.
    browser.get(ranged.url + BLANK)
    data = (media / LONG_WAV).read_bytes()
    last = target + 65535
    fetched = browser.execute_async_script(FETCH_JS, "/" + LONG_WAV, f"bytes={target}-{last}")
    assert fetched == {
        "status": 206, "contentRange": f"bytes {target}-{last}/{len(data)}",
        "length": 65536, "sha256": sha256(data[target:last + 1])}
    wait_logged(ranged, "/" + LONG_WAV, lambda r: r.range == f"bytes={target}-{last}")
    assert (f"bytes={target}-{last}", 206, 65536, "") in sent_lines(ranged, "/" + LONG_WAV)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*SHORT_MEDIA, LONG_WAV])
def test_chromium_cannot_seek_without_ranges(browser: Any, plain: Server, media: Path,
                                             name: str) -> None:
    skip_unless_playable(browser, plain, name)
    before = len(requests_for(plain, "/" + name))
    result = play(browser, plain, name, 0.8, to_end=False)
    assert result["why"] == "seeked", result
    assert result["target"] > 2
    # A 200 to "bytes=0-" leaves nothing seekable and the seek snaps back to 0.
    assert all(end < result["target"] for _, end in result["seekable"]), result
    assert result["seekedAt"] < 0.5, result
    let_go(browser)
    first = wait_logged(plain, "/" + name, lambda r: r.range == "bytes=0-")
    logged = requests_for(plain, "/" + name)[before:]
    assert first and all(r.status == 200 for r in first), logged
    assert 206 not in {r.status for r in logged}, logged


# --- curl ------------------------------------------------------------------------------------

def test_curl_resumes(ranged: Server, blob: bytes, tmp_path: Path) -> None:
    before = len(requests_for(ranged, "/" + BLOB))
    out = tmp_path / BLOB
    have = 3 * 1024 * 1024 + 7
    out.write_bytes(blob[:have])
    # curl -C - asks for the rest (bytes=N-); it exits 33 if the answer is a 200.
    done = run([need_tool("curl"), "-sS", "--fail", "-C", "-", "-o", str(out),
                f"{ranged.url}/{BLOB}"])
    assert done.returncode == 0, done.stderr
    assert sha256(out.read_bytes()) == sha256(blob)
    [req] = requests_for(ranged, "/" + BLOB)[before:]
    assert (req.range, req.status) == (f"bytes={have}-", 206)
    assert sent_lines(ranged, "/" + BLOB)[-1] == (f"bytes={have}-", 206, len(blob) - have, "")


def test_curl_resume_fails_without_ranges(plain: Server, blob: bytes, tmp_path: Path) -> None:
    before = len(requests_for(plain, "/" + BLOB))
    out = tmp_path / BLOB
    have = 3 * 1024 * 1024 + 7
    out.write_bytes(blob[:have])
    done = run([need_tool("curl"), "-sS", "--fail", "-C", "-", "-o", str(out),
                f"{plain.url}/{BLOB}"])
    assert done.returncode == 33, done.stderr  # "server does not support byte ranges"
    assert out.read_bytes() == blob[:have]
    wait_logged(plain, "/" + BLOB, lambda r: r.range == f"bytes={have}-")
    [req] = requests_for(plain, "/" + BLOB)[before:]
    assert (req.range, req.status) == (f"bytes={have}-", 200)


# --- aria2c ----------------------------------------------------------------------------------

def test_aria2c_splits_the_download(ranged: Server, blob: bytes, tmp_path: Path) -> None:
    before = len(requests_for(ranged, "/" + BLOB))
    done = run([need_tool("aria2c"), "--no-conf", "-x", "8", "-s", "8", "-k", "1M",
                "--dir", str(tmp_path), "--out", BLOB, "--file-allocation=none",
                "--allow-overwrite=true", "--auto-file-renaming=false", "--max-tries=1",
                "--summary-interval=0", "--console-log-level=warn",
                "--download-result=hide", f"{ranged.url}/{BLOB}"])
    assert done.returncode == 0, done.stderr
    assert sha256((tmp_path / BLOB).read_bytes()) == sha256(blob)
    logged = requests_for(ranged, "/" + BLOB)[before:]
    partial = [r for r in logged if r.range is not None]
    assert len(partial) >= 2, logged
    assert all(r.status == 206 and r.range and r.range.startswith("bytes=")
               for r in partial), logged
    assert {r.status for r in logged} <= {200, 206}, logged
    # Every segment starts at a distinct offset inside the file.
    starts = sorted(r.first_pos for r in partial if r.first_pos is not None)
    assert len(set(starts)) == len(starts) and starts[-1] < len(blob), starts


# --- ffprobe ---------------------------------------------------------------------------------

def test_ffprobe_reads_the_moov_at_the_end(ranged: Server, clip: bytes, root: Path) -> None:
    before = len(requests_for(ranged, "/" + CLIP))
    done = run([need_tool("ffprobe"), "-v", "error", "-show_entries",
                "format=duration,size:stream=codec_name", "-of", "json", f"{ranged.url}/{CLIP}"])
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert int(info["format"]["size"]) == len(clip)
    assert float(info["format"]["duration"]) == pytest.approx(6, abs=0.2)
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    moov = mp4_atoms(root / CLIP)["moov"]
    wait_logged(ranged, "/" + CLIP, lambda r: r.first_pos == moov)
    logged = requests_for(ranged, "/" + CLIP)[before:]
    assert (logged[0].range, logged[0].status) == ("bytes=0-", 206), logged
    # moov sits after mdat: ffprobe jumps there with a new "bytes=<offset>-" and reads it all.
    assert any(r.status == 206 and r.first_pos == moov for r in logged[1:]), (moov, logged)
    assert (f"bytes={moov}-", 206, len(clip) - moov, "") in sent_lines(ranged, "/" + CLIP)
