"""Denial-of-service shapes: time against Range header length, and peak memory per shape.

    python benchmarks/dos_shapes.py            # lengths up to 1 MiB, longer timing runs
    python benchmarks/dos_shapes.py --quick    # the same shapes, short timing runs (CI)

Each shape is a Range header grown to several lengths and sent, in process, through
``RangeMiddleware`` in front of an application answering a 64 KiB list body. Every answer is
checked (status, bytes) before it is timed. The table shows the CPU time per request at each
length and the growth factor between the two longest (1 MiB to 4 MiB): a parser linear in the
header length shows a factor near the length ratio (4), a quadratic one near its square (16).
Peak memory is ``tracemalloc``'s peak for one request with a 1 MiB header (the header itself
excluded). Real servers cap header fields far below this (gunicorn 8,190 bytes per field,
waitress 256 KiB for the whole header section).

``main(quick)`` returns the Markdown tables; ``benchmarks/run.py`` can call it.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    BenchError,
    KiB,
    MiB,
    WSGIApp,
    base_environ,
    calibrate,
    check_reply,
    fetch,
    time_batch,
    with_range,
)
from rangewsgi import RangeMiddleware

BODY = 64 * KiB
LENGTHS = [4 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB]
PEAK_AT = 1 * MiB


def _fill(prefix: str, unit: str, length: int, suffix: str = "") -> str:
    """``prefix`` + ``unit`` repeated to about ``length`` characters + ``suffix``."""
    count = max(1, (length - len(prefix) - len(suffix)) // len(unit))
    return prefix + unit * count + suffix


def _apache_killer(length: int) -> str:
    parts = ["bytes=0-"]
    size, k = len(parts[0]), 0
    while size < length:
        item = f"5-{k}"
        parts.append(item)
        size += len(item) + 1
        k += 1
    return ",".join(parts)


# name -> (header of about n characters, expected status)
GROWING: dict[str, tuple[Callable[[int], str], int]] = {
    "Apache Killer (bytes=0-,5-0,5-1,...)": (_apache_killer, 200),
    "many small ranges (0-0,0-0,...)": (lambda n: _fill("bytes=", "0-0,", n, "0-0"), 200),
    "one long first-pos (1111...-)": (lambda n: _fill("bytes=", "1", n, "-"), 416),
    "one long suffix (-9999...)": (lambda n: _fill("bytes=-", "9", n), 206),
    "empty list elements (,,,,0-0)": (lambda n: _fill("bytes=", ",", n, "0-0"), 200),
    "whitespace ( ... 0-0)": (lambda n: _fill("bytes=", " ", n, "0-0"), 206),
    "junk (xxxx)": (lambda n: _fill("bytes=", "x", n), 200),
}

FIXED: dict[str, tuple[str, int]] = {
    "Apache Killer, 1300 ranges": (
        "bytes=0-," + ",".join(f"5-{k}" for k in range(1300)), 200),
    "10,000 ranges": ("bytes=" + ",".join(f"{2 * k}-{2 * k}" for k in range(10_000)), 200),
    "5,000-digit last-pos": ("bytes=0-" + "9" * 5000, 206),
    "5,000-digit first-pos": ("bytes=" + "9" * 5000 + "-", 416),
    "5,000-digit both, inverted": ("bytes=" + "9" * 5000 + "-" + "9" * 4999, 200),
    "99 copies of 0-": ("bytes=" + ",".join(["0-"] * 99), 206),
    "100 one-byte ranges (multipart)": (
        "bytes=" + ",".join(f"{k * 600}-{k * 600}" for k in range(100)), 206),
    "100 overlapping ranges": ("bytes=" + ",".join(f"{k}-{k + 1000}" for k in range(100)), 206),
}


def _app(data: bytes) -> WSGIApp:
    def inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(data)))])
        return [data[:BODY // 2], data[BODY // 2:]]
    return RangeMiddleware(inner)


def _checked(app: WSGIApp, value: str, status: int, data: bytes) -> tuple[int, int]:
    """Serve once, check the answer; return (status, response body size)."""
    reply = fetch(app, with_range(base_environ(), value), sendfile=False)
    check_reply(reply, data, len(data))
    if reply.status != status:
        raise BenchError(f"{value[:40]!r}...: status {reply.status}, expected {status}")
    if len(reply.body) > len(data) + 4096:
        raise BenchError(f"{value[:40]!r}...: {len(reply.body)} bytes for a {len(data)} file")
    return reply.status, len(reply.body)


def _peak(app: WSGIApp, value: str) -> int:
    environ = with_range(base_environ(), value)
    tracemalloc.start()
    try:
        fetch(app, environ, sendfile=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def _time(app: WSGIApp, value: str, target: float) -> float:
    environ = with_range(base_environ(), value)

    def call() -> object:
        return fetch(app, dict(environ), sendfile=False)

    n = calibrate(call, target, cap=20_000)
    return min(time_batch(call, n).cpu for _ in range(3))  # CPU time of this thread


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n // KiB} KiB"


def _mem(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / KiB:.0f} KiB"


def main(quick: bool) -> str:
    """Run every shape; return the Markdown tables."""
    target = 0.05 if quick else 0.4
    data = bytes(range(256)) * (BODY // 256)
    app = _app(data)
    head = " | ".join(f"{_size(n)} header" for n in LENGTHS)
    lines = [
        "Time per request (in process, 64 KiB body) against the Range header length:",
        "",
        f"| shape | answer | {head} | growth for 4x length | peak memory, 1 MiB header |",
        "|---|---|" + "---:|" * (len(LENGTHS) + 2),
    ]
    for name, (make, status) in GROWING.items():
        times = []
        for length in LENGTHS:
            value = make(length)
            _checked(app, value, status, data)
            times.append(_time(app, value, target))
        peak = _peak(app, make(PEAK_AT))
        cells = " | ".join(f"{t * 1e3:,.2f} ms" for t in times)
        lines.append(f"| {name} | {status} | {cells} | {times[-1] / times[-2]:.1f} "
                     f"| {_mem(peak)} |")
    lines += [
        "",
        "Fixed shapes (64 KiB representation):",
        "",
        "| shape | header | answer | response body | time per request | peak memory |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, (value, status) in FIXED.items():
        got, size = _checked(app, value, status, data)
        spent = _time(app, value, target)
        peak = _peak(app, value)
        lines.append(f"| {name} | {len(value):,} B | {got} | {size:,} B | "
                     f"{spent * 1e6:,.0f} µs | {_mem(peak)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timing runs (CI)")
    print(main(parser.parse_args().quick))
