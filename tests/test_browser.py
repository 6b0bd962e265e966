"""A real headless Chromium plays, seeks and finishes media served by the demo app.

The demo's file app answers plain 200s; ``python -m rangewsgi`` wraps it in RangeMiddleware
and ``--no-ranges`` does not. Chromium asks for ``Range: bytes=0-`` (RFC 9110 section 14.2)
and only treats the media as seekable when it gets a 206 (section 15.3.7) back.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_scripts import CHROMIUM_FLAGS, FETCH_JS, PLAY_JS
from media import (
    MP4_CODECS,
    chromium,
    make_long_wav,
    make_mp4_moov_at_end,
    make_webm_audio,
    make_webm_video,
    need_module,
    need_tool,
    requests_for,
    start_demo,
    wait_logged,
    wav_offset,
)
from support import ROOT, Server, free_port, start_server

pytestmark = [pytest.mark.network, pytest.mark.slow]

SCREENSHOT = ROOT / "docs" / "screenshot-demo.png"
SCRIPT_TIMEOUT = 30
BLANK = "/blank-page"  # any same-origin URL that is not the index page with its players

SHORT_MEDIA = ["audio.weba", "video.webm", "h264.mp4", "vp9.mp4"]  # .weba: WebM audio
LONG_WAV = "long.wav"
SAMPLE_VIDEO, SAMPLE_AUDIO = "testcard.webm", "sweep.wav"  # what --sample serves

@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    make_webm_audio(root / "audio.weba")
    make_webm_video(root / "video.webm")
    make_mp4_moov_at_end(root / "h264.mp4", "h264")
    make_mp4_moov_at_end(root / "vp9.mp4", "vp9")
    make_long_wav(root / LONG_WAV)
    return root


@pytest.fixture(scope="module")
def ranged(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_demo(media_dir, tmp_path_factory.mktemp("log") / "ranged.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_demo(media_dir, tmp_path_factory.mktemp("log") / "plain.log", ranges=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(CHROMIUM_FLAGS, tmp_path_factory.mktemp("chromium"), SCRIPT_TIMEOUT) as driver:
        yield driver


def play(driver: Any, server: Server, name: str, fraction: float, to_end: bool) -> dict[str, Any]:
    """Run PLAY_JS for ``name`` on a page of ``server`` (same origin, no players of its own)."""
    driver.get(server.url + BLANK)
    result: dict[str, Any] = driver.execute_async_script(
        PLAY_JS, "/" + name, fraction, to_end, SCRIPT_TIMEOUT * 1000 - 5000)
    return result


def can_play(driver: Any, server: Server, name: str) -> bool:
    if not name.endswith(".mp4"):
        return True
    driver.get(server.url + BLANK)
    mime = MP4_CODECS[name.removesuffix(".mp4")][2]
    answer: str = driver.execute_script(
        "return document.createElement('video').canPlayType(arguments[0]);", mime)
    return answer == "probably"


@pytest.mark.parametrize("name", SHORT_MEDIA)
def test_seek_near_end_and_finish_with_ranges(browser: Any, ranged: Server, name: str) -> None:
    if not can_play(browser, ranged, name):
        pytest.skip(f"this Chromium build does not play {name}")
    result = play(browser, ranged, name, 0.8, to_end=True)
    assert result["why"] == "ended", result
    duration = result["duration"]
    assert duration > 2
    # The whole duration is seekable: one range from 0 to the end.
    [[start, end]] = result["seekable"]
    assert start == 0 and end == pytest.approx(duration, abs=0.1), result
    assert result["seekedAt"] == pytest.approx(result["target"], abs=0.5), result
    assert result["currentTime"] == pytest.approx(duration, abs=0.1), result
    browser.get("about:blank")  # lets go of the media connections, so they are logged
    first = wait_logged(ranged, "/" + name, lambda r: r.range == "bytes=0-")
    assert first and all(r.status == 206 for r in first), requests_for(ranged, "/" + name)


@pytest.mark.parametrize("name", [*SHORT_MEDIA, LONG_WAV])
def test_seek_fails_without_ranges(browser: Any, plain: Server, name: str) -> None:
    if not can_play(browser, plain, name):
        pytest.skip(f"this Chromium build does not play {name}")
    result = play(browser, plain, name, 0.8, to_end=False)
    assert result["why"] == "seeked", result
    assert result["target"] > 2
    # A 200 answer to "bytes=0-" leaves nothing seekable (Chromium reports [[0, 0]]) and the
    # seek snaps back to 0.
    assert all(end < result["target"] for _, end in result["seekable"]), result
    assert result["seekedAt"] < 0.5, result
    browser.get("about:blank")
    first = wait_logged(plain, "/" + name, lambda r: r.range == "bytes=0-")
    assert first and all(r.status == 200 for r in first), requests_for(plain, "/" + name)


def test_long_wav_seek_sends_mid_file_range(browser: Any, ranged: Server,
                                            media_dir: Path) -> None:
    before = len(requests_for(ranged, "/" + LONG_WAV))
    result = play(browser, ranged, LONG_WAV, 0.5, to_end=False)
    assert result["why"] == "seeked", result
    assert result["duration"] == pytest.approx(20 * 60, abs=1)
    assert result["seekedAt"] == pytest.approx(600, abs=1), result
    [[start, end]] = result["seekable"]
    assert (start, end) == (0, pytest.approx(1200, abs=1))
    # The seek target lies past what the first request preloaded: Chromium opens a new
    # "bytes=N-" range close below the target's byte offset and gets a 206 for it.
    target = wav_offset(600)
    browser.get("about:blank")  # lets go of the media connections, so they are logged
    mid = wait_logged(ranged, "/" + LONG_WAV,
                      lambda r: r.first_pos is not None and target - (1 << 20) <= r.first_pos
                      <= target)
    logged = requests_for(ranged, "/" + LONG_WAV)[before:]
    assert mid and all(r.status == 206 for r in mid), logged
    opened = [r.status for r in logged if r.range == "bytes=0-"]
    assert opened and set(opened) == {206}, logged
    browser.get(ranged.url + BLANK)

    # The browser's own fetch of that region gets the source bytes.
    data = (media_dir / LONG_WAV).read_bytes()
    range_end = target + 65535
    fetched = browser.execute_async_script(FETCH_JS, "/" + LONG_WAV, f"bytes={target}-{range_end}")
    assert fetched == {
        "status": 206, "contentRange": f"bytes {target}-{range_end}/{len(data)}",
        "length": 65536, "sha256": hashlib.sha256(data[target:range_end + 1]).hexdigest()}


# On the demo index page: seek the audio player to the middle and leave it paused, seek the
# video player to the middle and play it until it is half a second past the middle.
SHOWCASE_JS = """
const [videoName, audioName, done] = arguments;
const v = document.querySelector(`video[src$="${videoName}"]`);
const a = document.querySelector(`audio[src$="${audioName}"]`);
if (!v || !a) { done({error: 'players missing from the index page'}); return; }
v.muted = true;
const timer = setTimeout(() => done({error: 'timeout', t: v.currentTime}), 20000);
const report = () => ({t: v.currentTime, duration: v.duration, paused: v.paused,
                       seekable: v.seekable.length ? v.seekable.end(0) : 0,
                       audioAt: a.currentTime, audioDuration: a.duration});
const ready = (el) => new Promise((resolve) => el.readyState >= 1
  ? resolve() : el.addEventListener('loadedmetadata', resolve, {once: true}));
const seek = (el, t) => new Promise((resolve) => {
  el.addEventListener('seeked', resolve, {once: true}); el.currentTime = t; });
(async () => {
  await ready(a); await seek(a, a.duration / 2);
  await ready(v); await seek(v, v.duration / 2);
  await v.play();
  const wait = () => v.currentTime > v.duration / 2 + 0.5
    ? (clearTimeout(timer), done(report())) : setTimeout(wait, 50);
  wait();
})().catch((e) => done({error: String(e)}));
"""


def test_screenshot_of_demo_page_mid_play(browser: Any, tmp_path: Path) -> None:
    """The README's picture, taken from ``python -m rangewsgi --sample`` as a user starts it:
    the index page, its video seeked to the middle and playing, its audio seeked too."""
    need_tool("ffmpeg")  # --sample makes its video with ffmpeg
    port = free_port()
    server = start_server([sys.executable, "-m", "rangewsgi", "--sample", "--host",
                           "127.0.0.1", "--port", str(port)], port,
                          log_path=tmp_path / "sample.log", timeout=120)
    try:
        browser.get(server.url + "/")
        state = browser.execute_async_script(SHOWCASE_JS, SAMPLE_VIDEO, SAMPLE_AUDIO)
        assert "error" not in state, state
        assert not state["paused"], state
        assert state["t"] > state["duration"] / 2, state
        assert state["seekable"] == pytest.approx(state["duration"], abs=0.1), state
        assert state["audioAt"] == pytest.approx(state["audioDuration"] / 2, abs=1), state
        # Hovering keeps the player's controls (time and seek bar) on screen.
        chains = need_module("selenium.webdriver.common.action_chains")
        video = browser.find_element("css selector", f'video[src$="{SAMPLE_VIDEO}"]')
        chains.ActionChains(browser).move_to_element(video).perform()
        png = browser.get_screenshot_as_png()
        browser.get("about:blank")  # lets go of the media connections, so they are logged
        logged = wait_logged(server, "/" + SAMPLE_AUDIO,
                             lambda r: r.first_pos is not None and r.first_pos > 0)
    finally:
        server.stop()
    assert any(r.first_pos and r.status == 206 for r in logged), logged
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    (tmp_path / "screenshot-demo.png").write_bytes(png)
    # Written into docs/ only on request or when missing, so test runs leave the tree clean.
    if os.environ.get("RANGEWSGI_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(png)


# Fetch ``src`` twice with the browser's own cache: a plain load, then a reload that must
# revalidate (cache: 'no-cache' sends the stored validators). Report what the page got.
RELOAD_JS = """
const [src, done] = arguments;
const get = async (mode) => {
  const r = await fetch(src, {cache: mode});
  const body = await r.arrayBuffer();
  return {status: r.status, length: body.byteLength};
};
(async () => done({first: await get('default'), reload: await get('no-cache')}))()
  .catch((e) => done({error: String(e)}));
"""


def test_reload_revalidates_instead_of_downloading_again(browser: Any, ranged: Server,
                                                         media_dir: Path) -> None:
    """Chromium keeps the file in its cache, revalidates it with the ETag it got, and the
    middleware answers 304: the reload moves no body bytes."""
    name = "video.webm"
    size = (media_dir / name).stat().st_size
    before = len(requests_for(ranged, "/" + name))
    browser.get(ranged.url + BLANK)
    # A query of its own: the media tests before this one may have cached the plain URL.
    result = browser.execute_async_script(RELOAD_JS, f"/{name}?reload={os.getpid()}")
    # The page sees the full file both times (the browser serves the 304 from its cache).
    assert result == {"first": {"status": 200, "length": size},
                      "reload": {"status": 200, "length": size}}, result
    wait_logged(ranged, "/" + name, lambda r: r.status == 304)
    logged = [r.status for r in requests_for(ranged, "/" + name)[before:]]
    assert logged == [200, 304], logged
