"""Shared pieces: WSGI environ, a body consumer that behaves like gunicorn, checks, timers."""

from __future__ import annotations

import gc
import io
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from gunicorn import __version__ as gunicorn_version
from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from support import header_value, parse_multipart

ROOT = Path(__file__).resolve().parent.parent

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BenchError(AssertionError):
    """The bytes or the status served are wrong: the benchmark run must fail."""


def base_environ(path: str = "/file.bin") -> dict[str, Any]:
    """A GET environ as gunicorn builds it (its own ``wsgi.file_wrapper`` class included)."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": GunicornFileWrapper,
        # What decides zero-copy (rangewsgi/servers.py): the server and its version.
        "SERVER_SOFTWARE": f"gunicorn/{gunicorn_version}",
    }


def with_range(environ: dict[str, Any], range_value: str | None) -> dict[str, Any]:
    env = dict(environ)
    if range_value is not None:
        env["HTTP_RANGE"] = range_value
    return env


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


class _Start:
    """A ``start_response`` that keeps the last status and headers."""

    __slots__ = ("headers", "status")

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]],
                 exc_info: Any = None) -> Callable[[bytes], None]:
        self.status = status
        self.headers = headers
        return _no_write

    def content_length(self) -> int | None:
        for key, value in self.headers:
            if key.lower() == "content-length":
                return int(value)
        return None


def _no_write(data: bytes) -> None:
    raise BenchError("the legacy write() callable is not expected here")


def _sendfile_target(result: Iterable[bytes], environ: dict[str, Any]) -> int | None:
    """The fd gunicorn would sendfile from, or None when it would iterate (see its sendfile)."""
    wrapper = environ["wsgi.file_wrapper"]
    if not isinstance(result, wrapper):
        return None
    filelike = getattr(result, "filelike", None)
    try:
        fd: int = filelike.fileno()  # type: ignore[union-attr]
        os.lseek(fd, 0, os.SEEK_CUR)
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return fd


class Sink:
    """Consumes a WSGI result the way gunicorn's sync worker does, writing to /dev/null.

    A ``wsgi.file_wrapper`` result with a real ``fileno()`` goes through ``os.sendfile`` from
    the fd's current offset for ``Content-Length`` bytes; anything else is iterated.
    """

    def __init__(self) -> None:
        self.devnull = os.open(os.devnull, os.O_WRONLY)
        self.status = ""

    def close(self) -> None:
        os.close(self.devnull)

    def run(self, app: WSGIApp, environ: dict[str, Any], iterate: bool = False) -> int:
        """Serve one request; return the number of body bytes 'sent'.

        ``iterate=True`` never uses sendfile (as wsgiref, waitress or uWSGI-style servers).
        """
        start = _Start()
        result = app(environ, start)
        self.status = start.status
        sent = 0
        try:
            fd = None if iterate else _sendfile_target(result, environ)
            if fd is not None:
                offset = os.lseek(fd, 0, os.SEEK_CUR)
                length = start.content_length()
                todo = os.fstat(fd).st_size - offset if length is None else length
                while todo > 0:
                    n = os.sendfile(self.devnull, fd, offset + sent, todo)
                    if n == 0:
                        break
                    sent += n
                    todo -= n
            else:
                for chunk in result:
                    sent += len(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return sent


def fetch(app: WSGIApp, environ: dict[str, Any], *, sendfile: bool) -> Reply:
    """Serve one request and keep the body bytes.

    ``sendfile=True`` reads what gunicorn would send (the fd from its current offset, exactly
    ``Content-Length`` bytes); ``sendfile=False`` iterates the result like wsgiref does.
    """
    start = _Start()
    result = app(environ, start)
    try:
        fd = _sendfile_target(result, environ) if sendfile else None
        if fd is not None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            length = start.content_length()
            todo = os.fstat(fd).st_size - offset if length is None else length
            body = os.pread(fd, todo, offset)
        else:
            body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not start.status:
        raise BenchError("start_response was never called")
    return Reply(int(start.status.split()[0]), list(start.headers), body)


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def check_reply(reply: Reply, data: bytes | Callable[[int, int], bytes], total: int,
                ) -> str:
    """Check that a reply's bytes agree with its own status and headers; describe it.

    ``data`` is the representation, or a function ``(start, stop) -> bytes`` for big ones.
    Returns "200", "206", "206 multipart (N parts)" or "416". Raises BenchError otherwise.
    """
    def part(start: int, stop: int) -> bytes:
        return data[start:stop] if isinstance(data, bytes) else data(start, stop)

    declared = reply.header("Content-Length")
    if declared is not None and int(declared) != len(reply.body):
        raise BenchError(f"Content-Length {declared} but {len(reply.body)} bytes sent")
    ctype = reply.header("Content-Type") or ""
    if reply.status == 200:
        if len(reply.body) != total or reply.body != part(0, total):
            raise BenchError("a 200 did not carry the whole representation")
        return "200"
    if reply.status == 416:
        if reply.header("Content-Range") != f"bytes */{total}":
            raise BenchError(f"416 with Content-Range {reply.header('Content-Range')!r}")
        return "416"
    if reply.status != 206:
        raise BenchError(f"unexpected status {reply.status}")
    if ctype.lower().startswith("multipart/byteranges"):
        parts = parse_multipart(reply.body, ctype)
        for fields, payload in parts:
            first, last = _parse_content_range(fields.get("content-range"), total)
            if payload != part(first, last + 1):
                raise BenchError(f"multipart part {first}-{last} has the wrong bytes")
        return f"206 multipart ({len(parts)} parts)"
    first, last = _parse_content_range(reply.header("Content-Range"), total)
    if reply.body != part(first, last + 1):
        raise BenchError(f"206 {first}-{last} has the wrong bytes")
    return "206"


def _parse_content_range(value: str | None, total: int) -> tuple[int, int]:
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        raise BenchError(f"bad Content-Range {value!r}")
    first, last, length = (int(g) for g in match.groups())
    if length != total or not first <= last < total:
        raise BenchError(f"Content-Range {value!r} does not fit a {total}-byte body")
    return first, last


def expect_ranges(reply: Reply, ranges: Sequence[tuple[int, int]], total: int) -> None:
    """Fail unless the reply carries exactly these (first, last) ranges, in order."""
    ctype = reply.header("Content-Type") or ""
    if len(ranges) == 1:
        got = [_parse_content_range(reply.header("Content-Range"), total)]
    else:
        if not ctype.lower().startswith("multipart/byteranges"):
            raise BenchError(f"expected multipart/byteranges, got {ctype!r}")
        got = [_parse_content_range(f.get("content-range"), total)
               for f, _ in parse_multipart(reply.body, ctype)]
    if got != list(ranges):
        raise BenchError(f"expected ranges {list(ranges)}, got {got}")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass
class Sample:
    """Seconds per call: CPU time of this thread (user + system) and wall-clock time."""

    cpu: float
    wall: float


def time_batch(call: Callable[[], object], n: int) -> Sample:
    """Mean cost per call over ``n`` back-to-back calls.

    CPU time of the calling thread is the figure quoted: it includes the kernel's work for
    this thread (sendfile, read) and excludes time spent descheduled, so other load on the
    machine does not inflate it. Wall-clock time is kept alongside.
    """
    gc.collect()
    c0 = time.thread_time()
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    wall = time.perf_counter() - t0
    return Sample((time.thread_time() - c0) / n, wall / n)


def calibrate(call: Callable[[], object], target: float, cap: int = 100_000) -> int:
    """How many calls fill about ``target`` seconds (at least 1)."""
    n = 1
    while n < cap:
        t = time_batch(call, n).wall * n
        if t >= target / 4:
            break
        n *= 4
    per = time_batch(call, n).wall
    return max(1, min(cap, int(target / per) if per > 0 else cap))


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def make_data_file(path: Path, size: int, seed: int = 1) -> None:
    """Write ``size`` bytes where every MiB differs (offset bugs show up in the bytes)."""
    import random
    block = random.Random(seed).randbytes(MiB)
    with open(path, "wb") as f:
        written = 0
        index = 0
        while written < size:
            chunk = index.to_bytes(8, "big") + block[8:]
            n = min(MiB, size - written)
            f.write(chunk[:n])
            written += n
            index += 1


def read_slice(path: Path) -> Callable[[int, int], bytes]:
    def part(start: int, stop: int) -> bytes:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(stop - start)
    return part


def _first_line(cmd: Sequence[str]) -> str:
    exe = shutil.which(cmd[0])
    if exe is None:
        return "not installed"
    proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=30,
                          check=False)
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else "?"


def machine_info() -> dict[str, str]:
    """CPU, cores, kernel, Python and package versions."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    info = {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "kernel": platform.release(),
        "OS": _os_name(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    for dist in ("rangewsgi", "werkzeug", "flask", "webob", "whitenoise", "gunicorn",
                 "matplotlib"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = _module_version(dist)
    info["nginx"] = _first_line(["nginx", "-v"]).rpartition("/")[2]
    info["curl"] = " ".join(_first_line(["curl", "--version"]).split()[:2])
    info["wrk"] = " ".join(_first_line(["wrk", "--version"]).split()[:2])
    return info


def _module_version(name: str) -> str:
    try:
        module = __import__(name)
    except ImportError:
        return "not installed"
    return str(getattr(module, "__version__", "source tree"))


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()
