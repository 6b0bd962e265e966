"""The ASGI RangeMiddleware on uvicorn over loopback, side by side in one run.

    python benchmarks/asgi.py [--quick]

Prints a markdown table of medians:

- 4 KiB ranges at random offsets, ``wrk`` at 16 connections: the middleware answering a
  path-send file by seeking, against Starlette's ``FileResponse`` answering its own ranges;
- ``bytes=1-`` of a 1 GiB (sparse) file, against the same file as a 200 through the same
  server, and against ``FileResponse``'s own 206;
- ``bytes=-100`` of a 10 GiB async generator: time, and the server's peak RSS;
- the in-process cost of the middleware on a response it passes on (``timeit`` medians).

uvicorn runs this module's ``app`` in a subprocess; every answer's status and size are checked.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rangewsgi.asgi import RangeMiddleware  # noqa: E402

FILE_ENV = "RANGEWSGI_BENCH_FILE"
GIB = 1 << 30
GEN_SIZE = 10 * GIB
GEN_BLOCK = 64 << 10  # the block size async generators typically yield
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# -- the applications uvicorn serves --


async def file_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """A file as an app without range support sends it: its length, then path-send."""
    path = os.environ[FILE_ENV]
    size = os.stat(path).st_size
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", str(size).encode())]})
    if "http.response.pathsend" in scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": path})
        return
    with open(path, "rb") as file:
        while block := file.read(1 << 16):
            await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def generator_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """A 10 GiB body made on the fly (an async generator's chunks), with its length."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", str(GEN_SIZE).encode()),
                            (b"etag", b'"gen-1"')]})
    block = bytes(GEN_BLOCK)

    async def chunks() -> Any:
        for _ in range(GEN_SIZE // GEN_BLOCK):
            yield block

    async for chunk in chunks():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def build_app() -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Route

    async def starlette_file(request: Any) -> Any:
        return FileResponse(os.environ[FILE_ENV], media_type="application/octet-stream")

    starlette = Starlette(routes=[Route("/starlette/file", starlette_file)])
    routes = {"/mw/file": RangeMiddleware(file_app), "/mw/gen": RangeMiddleware(generator_app)}

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        inner = routes.get(scope.get("path", ""), starlette)
        await inner(scope, receive, send)

    return app


app = build_app() if os.environ.get(FILE_ENV) else None

# -- the server --


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn(path: Path, workdir: Path) -> Iterator[tuple[int, int]]:
    """uvicorn (httptools, uvloop) serving ``app`` over ``path``: (port, pid); stopped by
    PID (its process group)."""
    port = free_port()
    env = {**os.environ, FILE_ENV: str(path), "PYTHONPATH": str(ROOT)}
    log = open(workdir / "uvicorn.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "benchmarks.asgi:app",
                             "--host", "127.0.0.1", "--port", str(port), "--http", "httptools",
                             "--loop", "uvloop", "--no-access-log", "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((workdir / "uvicorn.log").read_text()[-2000:])
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                        timeout=0.5):
                break
            time.sleep(0.05)
        yield port, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (``VmHWM``), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) / 1024


# -- the measurements --


def curl(port: int, target: str, range_value: str | None, status: int, size: int) -> float:
    """Seconds for one transfer; its status and size must be as expected."""
    cmd = ["curl", "-s", "-o", "/dev/null", "--max-time", "600",
           "-w", "%{http_code} %{size_download} %{time_total}"]
    if range_value is not None:
        cmd += ["-H", f"Range: {range_value}"]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}{target}"], capture_output=True,
                         text=True, timeout=900, check=True).stdout.split()
    if (int(out[0]), int(out[1])) != (status, size):
        raise AssertionError(f"{target} {range_value}: {out[:2]}, expected {status} {size}")
    return float(out[2])


def wrk_rps(port: int, target: str, file_size: int, seconds: int, workdir: Path) -> float:
    """Requests per second for 4 KiB ranges at random 4 KiB-aligned offsets."""
    script = workdir / f"ranges{abs(hash(target))}.lua"
    blocks = file_size // 4096
    script.write_text(f"""
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
request = function()
  local first = math.random(0, {blocks} - 1) * 4096
  return wrk.format('GET', '{target}', {{['Range'] = 'bytes=' .. first .. '-' .. (first + 4095)}})
end
response = function(status, headers, body)
  if status ~= 206 or #body ~= 4096 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get('bad') end
  io.write('BAD ' .. total .. '\\n')
end
""")
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", str(script),
                          f"http://127.0.0.1:{port}{target}"],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None or "Non-2xx" in out or "BAD 0" not in out:
        raise AssertionError(out)
    return float(match.group(1))


def inprocess_us(runs: int) -> dict[str, tuple[float, float]]:
    """Microseconds per request, bare app against the wrapped one (``timeit`` medians)."""
    body = bytes(4096)

    async def small(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", b"4096"), (b"etag", b'"v1"')]})
        await send({"type": "http.response.body", "body": body})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    def scope(method: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": "1.1", "method": method, "scheme": "http", "path": "/",
                "raw_path": b"/", "query_string": b"", "root_path": "", "headers": headers,
                "extensions": {}}

    def drive(app: Any, the_scope: dict[str, Any]) -> Callable[[], None]:
        def once() -> None:
            coro = app(dict(the_scope), receive, send)
            try:
                coro.send(None)  # no await suspends here: one step runs the whole request
            except StopIteration:
                return
            raise AssertionError("the request suspended")

        return once

    wrapped = RangeMiddleware(small)
    cases = {
        "GET, 200 passed on": scope("GET", [(b"host", b"x")]),
        "GET, Range: 206": scope("GET", [(b"host", b"x"), (b"range", b"bytes=0-99")]),
        "POST, not touched": scope("POST", [(b"host", b"x")]),
    }
    results = {}
    for label, the_scope in cases.items():
        timings = []
        for app_under_test in (small, wrapped):
            call = drive(app_under_test, the_scope)
            number = 2000
            samples = timeit.repeat(call, number=number, repeat=runs)
            timings.append(statistics.median(samples) / number * 1e6)
        results[label] = (timings[0], timings[1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    args = parser.parse_args()
    for tool in ("wrk", "curl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (Debian package {tool})")
    seconds, runs = (2, 1) if args.quick else (8, 5)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="rangewsgi-asgi-bench-") as tmp:
        workdir = Path(tmp)
        big = workdir / "big.bin"
        subprocess.run(["truncate", "-s", str(GIB), str(big)], check=True)  # sparse
        with uvicorn(big, workdir) as (port, _pid):
            for target in ("/mw/file", "/starlette/file"):  # warm up: threads, page cache
                curl(port, target, "bytes=1-", 206, GIB - 1)
            transfers: dict[str, list[float]] = {"ranged": [], "whole": [], "own": []}
            for _ in range(runs):  # interleaved, so that drift hits every column alike
                transfers["ranged"].append(curl(port, "/mw/file", "bytes=1-", 206, GIB - 1))
                transfers["whole"].append(curl(port, "/mw/file", None, 200, GIB))
                transfers["own"].append(curl(port, "/starlette/file", "bytes=1-", 206,
                                             GIB - 1))
            ranged, whole, own = (statistics.median(transfers[k])
                                  for k in ("ranged", "whole", "own"))
            rows.append(("1 GiB file, bytes=1- (s)", f"{ranged:.2f}", f"{own:.2f}"))
            rows.append(("1 GiB file as a 200 through the same server (s)", f"{whole:.2f}",
                         "-"))
            ours = wrk_rps(port, "/mw/file", GIB, seconds, workdir)
            theirs = wrk_rps(port, "/starlette/file", GIB, seconds, workdir)
            rows.append(("4 KiB random ranges, wrk -c16 (req/s)", f"{ours:,.0f}",
                         f"{theirs:,.0f}"))
        with uvicorn(big, workdir) as (port, pid):
            before = peak_rss_mib(pid)
            tail = curl(port, "/mw/gen", "bytes=-100", 206, 100)
            after = peak_rss_mib(pid)
            rows.append(("bytes=-100 of a 10 GiB async generator (s)", f"{tail:.2f}", "-"))
            rows.append(("server peak RSS before / after it (MiB)",
                         f"{before:.0f} / {after:.0f}", "-"))
    for label, (bare, wrapped) in inprocess_us(5 if not args.quick else 3).items():
        rows.append((f"in-process, {label} (µs per request)", f"{wrapped:.1f}",
                     f"{bare:.1f}"))
    print("| measurement (uvicorn, httptools + uvloop, loopback) | rangewsgi ASGI "
          "| Starlette FileResponse / bare app |")
    print("|---|---:|---:|")
    for label, ours_value, theirs_value in rows:
        print(f"| {label} | {ours_value} | {theirs_value} |")


if __name__ == "__main__":
    main()
