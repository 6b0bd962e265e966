"""The ASGI recipes on uvicorn: a 100-byte range at the end of a 256 MiB file against the
whole file's GET, side by side in one run.

Each recipe of examples/recipes/ (Django with ``rangewsgi.django_asgi``, Django with its own
``get_asgi_application()``, FastAPI, Litestar, Quart) is served by uvicorn (httptools and
uvloop where installed) in a subprocess on loopback, stopped by PID. For each, ``curl`` asks
alternately for the whole file and for ``bytes=-100``, ``--runs`` times after one warm-up of
each; every answer's status and size are checked. The table gives the medians and their
ratio (target: at most 0.1, a range costs a tenth of the file or less).

    python benchmarks/recipes_asgi.py [--runs 7] [--size-mib 256]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECIPES_DIR = ROOT / "examples" / "recipes"
MiB = 1 << 20
TAIL = 100
START_TIMEOUT = 30.0

# name: (uvicorn target, is a factory)
SERVED: dict[str, tuple[str, bool]] = {
    "Django, rangewsgi.django_asgi": ("django_asgi:application", False),
    "Django, Django's get_asgi_application()": (
        "benchmarks.recipes_asgi:django_without_integration", True),
    "FastAPI (FileResponse)": ("fastapi_app:app", False),
    "Litestar, PathSendFile (the recipe)": ("litestar_app:app", False),
    "Litestar, its own File": ("benchmarks.recipes_asgi:litestar_streamed", True),
    "Quart, PathSendConnection (the recipe)": ("quart_app:app", False),
    "Quart, its own connection": ("benchmarks.recipes_asgi:quart_streamed", True),
}


def django_without_integration() -> Any:
    """uvicorn factory: the Django recipe's view behind Django's own ASGI handler."""
    from django.core.asgi import get_asgi_application

    from rangewsgi.asgi import RangeMiddleware

    importlib.import_module("django_asgi")  # the recipe's settings, view and URLs
    return RangeMiddleware(get_asgi_application())


def litestar_streamed() -> Any:
    """uvicorn factory: the Litestar recipe with Litestar's own File (streamed from byte 0)."""
    from litestar import Litestar, route
    from litestar.response import File

    from rangewsgi.asgi import RangeMiddleware

    recipe = importlib.import_module("litestar_app")

    # The annotation is a string here (postponed evaluation): Litestar resolves it in this
    # namespace.
    @route("/video", http_method=["GET", "HEAD"], signature_namespace={"File": File})
    async def video() -> File:
        return File(recipe.VIDEO, media_type="video/mp4", content_disposition_type="inline")

    return Litestar(route_handlers=[video], middleware=[RangeMiddleware])


def quart_streamed() -> Any:
    """uvicorn factory: the Quart recipe with Quart's own ASGI connection (streamed)."""
    from quart.asgi import ASGIHTTPConnection

    recipe = importlib.import_module("quart_app")
    recipe.app.asgi_http_class = ASGIHTTPConnection
    return recipe.app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)  # polling a condition: the port accepting connections
    raise RuntimeError(f"nothing listens on port {port} after {START_TIMEOUT} s")


def uvicorn_cmd(target: str, factory: bool, port: int) -> list[str]:
    fast = all(importlib.util.find_spec(m) is not None for m in ("httptools", "uvloop"))
    http, loop = ("httptools", "uvloop") if fast else ("h11", "asyncio")
    return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--http", http, "--loop", loop, "--log-level", "warning", "--no-access-log",
            *(["--factory"] if factory else []), target]


@contextlib.contextmanager
def served(target: str, factory: bool, data_file: Path, workdir: Path) -> Iterator[int]:
    """uvicorn serving ``target`` over ``data_file``: its port; stopped by PID after."""
    port = free_port()
    env = {**os.environ, "RANGEWSGI_EXAMPLE_FILE": str(data_file),
           "PYTHONPATH": os.pathsep.join([str(RECIPES_DIR), str(ROOT)])}
    log_path = workdir / f"{target.replace(':', '-')}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(uvicorn_cmd(target, factory, port), env=env, cwd=RECIPES_DIR,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_for_port(port, proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{log_path.read_text(errors='replace')[-2000:]}") from None
        yield port
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL after 10 s; nothing if it has gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def curl_seconds(port: int, range_value: str | None, status: int, size: int) -> float:
    """One GET of /video with ``curl``: its total time, after checking status and size."""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}"]
    if range_value is not None:
        cmd += ["-H", f"Range: {range_value}"]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}/video"], capture_output=True,
                         text=True, timeout=300, check=True).stdout.split()
    if (int(out[0]), int(out[1])) != (status, size):
        raise RuntimeError(f"expected {status} with {size} bytes, got {out}")
    return float(out[2])


def measure(port: int, size: int, runs: int) -> tuple[float, float]:
    """Medians of the whole file's GET and of ``bytes=-100``, asked alternately."""
    whole: list[float] = []
    tail: list[float] = []
    for attempt in range(runs + 1):  # the first of each is a warm-up
        full = curl_seconds(port, None, 200, size)
        part = curl_seconds(port, f"bytes=-{TAIL}", 206, TAIL)
        if attempt:
            whole.append(full)
            tail.append(part)
    return statistics.median(whole), statistics.median(tail)


def write_file(path: Path, size_mib: int) -> None:
    """``size_mib`` MiB of bytes: each MiB a different rotation of one random MiB."""
    block = os.urandom(MiB)
    with open(path, "wb") as out:
        for i in range(size_mib):
            shift = (i * 4099) % MiB
            out.write(block[shift:] + block[:shift])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed")
    with tempfile.TemporaryDirectory(prefix="rangewsgi-recipes-") as tmp:
        workdir = Path(tmp)
        data_file = workdir / "video.mp4"
        write_file(data_file, args.size_mib)
        size = args.size_mib * MiB
        print(f"| recipe on uvicorn ({args.size_mib} MiB file, median of {args.runs}) "
              f"| whole GET (ms) | bytes=-{TAIL} (ms) | ratio |")
        print("|---|---:|---:|---:|")
        for name, (target, factory) in SERVED.items():
            with served(target, factory, data_file, workdir) as port:
                whole, tail = measure(port, size, args.runs)
            print(f"| {name} | {whole * 1000:.1f} | {tail * 1000:.1f} | {tail / whole:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
