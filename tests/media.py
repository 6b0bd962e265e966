"""Media made at test time, and helpers to run the ``python -m rangewsgi`` demo server.

Everything is generated into a temporary directory: short WebM/MP4 clips with ffmpeg's
synthetic sources, a long WAV with the standard library, and seeded random blobs. The demo
server is the one the README shows, started as a subprocess with its request log captured.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
from support import Server, free_port, start_server

FFMPEG_TIMEOUT = 60.0


def _missing(message: str) -> NoReturn:
    """Skip the test, or fail it when ``CI=true`` (CI installs every tool)."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def need_tool(name: str) -> str:
    """Path of the executable ``name``; skip the test without it (fail when ``CI=true``)."""
    path = shutil.which(name)
    if path is None:
        _missing(f"{name} is not installed")
    return path


def need_module(name: str) -> ModuleType:
    """Import ``name``; skip the test without it (fail when ``CI=true``)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"Python module {name} is not installed")


def _ffmpeg(*args: str) -> None:
    cmd = [need_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT, check=False)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stderr.decode(errors='replace')}"


def _tone(seconds: float, frequency: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency={frequency}:duration={seconds}"]


def _picture(seconds: float) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size=480x270:rate=25:duration={seconds}"]


def make_webm_audio(path: Path, seconds: float = 4.0) -> Path:
    """A WebM file with one Opus audio track."""
    _ffmpeg(*_tone(seconds, 440), "-c:a", "libopus", "-b:a", "32k", "-f", "webm", str(path))
    return path


def make_webm_video(path: Path, seconds: float = 8.0) -> Path:
    """A WebM file with VP9 video (a moving test card) and Opus audio."""
    _ffmpeg(*_picture(seconds), *_tone(seconds, 330),
            "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k",
            "-c:a", "libopus", "-b:a", "32k", "-shortest", str(path))
    return path


MP4_CODECS = {
    # name: (ffmpeg video encoder arguments, ffmpeg audio encoder, HTML canPlayType string)
    "h264": (["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"], "aac",
             'video/mp4; codecs="avc1.42E01E, mp4a.40.2"'),
    "vp9": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k"],
            "libopus", 'video/mp4; codecs="vp09.00.10.08, opus"'),
}


def make_mp4_moov_at_end(path: Path, codec: str = "h264", seconds: float = 6.0) -> Path:
    """An MP4 whose ``moov`` atom comes after ``mdat`` (ffmpeg without ``+faststart``)."""
    video, audio, _ = MP4_CODECS[codec]
    _ffmpeg(*_picture(seconds), *_tone(seconds, 550), *video, "-c:a", audio, "-shortest",
            "-movflags", "-faststart", str(path))
    atoms = mp4_atoms(path)
    assert atoms["moov"] > atoms["mdat"], f"moov is not at the end: {atoms}"
    return path


def mp4_atoms(path: Path) -> dict[str, int]:
    """Offsets of the top-level boxes of an MP4 file (ISO/IEC 14496-12 box headers)."""
    offsets: dict[str, int] = {}
    size_on_disk = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset < size_on_disk:
            f.seek(offset)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:
                size = size_on_disk - offset
            offsets.setdefault(kind.decode("latin-1"), offset)
            offset += size
    return offsets


WAV_RATE = 8000
WAV_HEADER = 44


def make_long_wav(path: Path, minutes: int = 20) -> Path:
    """A 16-bit 8 kHz mono PCM WAV, long enough that a seek needs a mid-file range request."""
    second = b"".join(struct.pack("<h", int(6000 * math.sin(2 * math.pi * 440 * i / WAV_RATE)))
                      for i in range(WAV_RATE))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(WAV_RATE)
        minute = second * 60
        for _ in range(minutes):
            w.writeframes(minute)
    return path


def wav_offset(seconds: float) -> int:
    """Byte offset of the sample at ``seconds`` in a file from ``make_long_wav``."""
    return WAV_HEADER + int(seconds * WAV_RATE) * 2


def make_blob(path: Path, size: int, seed: int = 9110) -> bytes:
    """``size`` seeded random bytes, written to ``path`` and returned."""
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return data


# --- the demo server -----------------------------------------------------------------------

@dataclass(frozen=True)
class LoggedRequest:
    """One request line from the demo server's log."""

    method: str
    path: str
    range: str | None
    status: int

    @property
    def first_pos(self) -> int | None:
        """The first byte position of an ``bytes=N-...`` range, else None."""
        m = re.match(r"bytes=(\d+)-", self.range or "")
        return int(m.group(1)) if m else None


# The demo logs one line per request to stderr: "GET /path Range=bytes=0- -> 206"
# ("Range=-" when there is none). Concurrent requests can glue a line to the next one or to
# the server's own access log line, so entries are found anywhere in the text, not per line.
_LOG_ENTRY = re.compile(r"\b(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) (/\S*) Range=([^\n]*?)"
                        r" -> (\d{3})")


def parse_log(text: str) -> list[LoggedRequest]:
    """Requests logged by ``python -m rangewsgi``: method, path, Range header and status."""
    return [LoggedRequest(method, path, None if rng == "-" else rng, int(status))
            for method, path, rng, status in _LOG_ENTRY.findall(text)]


def start_demo(root: Path, log_path: Path, *, ranges: bool = True) -> Server:
    """Run ``python -m rangewsgi ROOT`` (or with ``--no-ranges``) on a free loopback port."""
    port = free_port()
    cmd = [sys.executable, "-m", "rangewsgi", str(root), "--host", "127.0.0.1",
           "--port", str(port)]
    if not ranges:
        cmd.append("--no-ranges")
    return start_server(cmd, port, log_path=log_path)


def requests_for(server: Server, path: str) -> list[LoggedRequest]:
    """The logged requests for ``path``, in the order they ended."""
    return [r for r in parse_log(server.log()) if r.path.split("?")[0] == path]


def wait_logged(server: Server, path: str, match: Callable[[LoggedRequest], bool],
                timeout: float = 10.0) -> list[LoggedRequest]:
    """The logged requests for ``path`` that ``match``, once there is one (bounded wait).

    The demo logs a request when its response has ended, with the bytes it sent, so a
    media request the browser keeps open appears only when the browser lets it go.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in requests_for(server, path) if match(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@contextlib.contextmanager
def chromium(flags: list[str], profile_parent: Path, timeout: float) -> Iterator[Any]:
    """Headless Debian Chromium driven by chromedriver, with a fresh profile; quit after."""
    binary = need_tool("chromium")
    chromedriver = need_tool("chromedriver")
    webdriver = need_module("selenium.webdriver")
    service = need_module("selenium.webdriver.chrome.service")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in flags:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=profile_parent)}")
    driver = webdriver.Chrome(options=options, service=service.Service(chromedriver))
    driver.set_script_timeout(timeout + 5)
    driver.set_page_load_timeout(timeout)
    try:
        yield driver
    finally:
        driver.quit()
