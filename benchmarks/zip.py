"""ZipSource against a plain file: time to first byte, throughput, bytes read for a range.

    python benchmarks/zip.py            # 1,000 files of 16 KiB, 64 MiB member, 5 runs
    python benchmarks/zip.py --quick    # 1 run of each case

Every case is one in-process ``GET`` through ``RangeMiddleware``, its body iterated as a
server would (no ``sendfile``), timed from the call to the first body byte and to the last,
and checked byte for byte against the archive made once beforehand:

- ``ZipSource, cold``: 1,000 small files zipped on demand, the CRC-32 cache empty (each
  CRC-32 is computed while its member is sent);
- ``ZipSource, warm``: the same, the CRC-32s cached by an earlier request;
- ``plain file``: the very same archive bytes, written to a file and served as an open file
  (what a temporary archive would cost once it exists).

Then a ``Range`` of 1 MiB in the middle of a 64 MiB member, with the bytes the process read
from files (``rchar`` of ``/proc/self/io``): about the range, not the member. Medians over
``--runs`` runs; no timing is asserted, wrong bytes fail the run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchmarks  # noqa: F401  (puts tests/ on the import path)
from benchmarks.common import BenchError, KiB, MiB, base_environ
from rangewsgi import RangeMiddleware
from rangewsgi.sources import zip as zipsource
from rangewsgi.sources.zip import ZipSource

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_tree(root: Path, count: int, size: int) -> list[tuple[str, str]]:
    rng = random.Random(1000)
    members = []
    for index in range(count):
        path = root / f"d{index // 100:02}" / f"f{index:04}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        members.append((path.relative_to(root).as_posix(), str(path)))
    return members


def zip_app(members: list[tuple[str, str]]) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/zip")])
        return ZipSource(members)
    return RangeMiddleware(app)


def file_app(path: Path) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/zip"),
                                  ("Content-Length", str(path.stat().st_size))])
        return open(path, "rb")  # closed by the middleware
    return RangeMiddleware(app)


def serve(app: WSGIApp, range_value: str | None = None) -> tuple[float, float, bytes]:
    """(seconds to the first body byte, seconds to the last, the body)."""
    environ = base_environ("/all.zip")
    if range_value is not None:
        environ["HTTP_RANGE"] = range_value
    statuses: list[str] = []
    started = time.perf_counter()
    result = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    first, chunks = 0.0, []
    try:
        for chunk in result:
            if chunk and not first:
                first = time.perf_counter() - started
            chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    expected = "200" if range_value is None else "206"
    if not statuses or not statuses[0].startswith(expected):
        raise BenchError(f"status {statuses}, not {expected}")
    return first, time.perf_counter() - started, b"".join(chunks)


def bytes_read() -> int:
    with open("/proc/self/io", encoding="ascii") as io_stats:
        for line in io_stats:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise BenchError("no rchar in /proc/self/io")


def whole_cases(work: Path, count: int, size: int, runs: int) -> list[list[str]]:
    members = make_tree(work / "tree", count, size)
    expected = b"".join(ZipSource(members))
    plain = work / "all.zip"
    plain.write_bytes(expected)
    cases: dict[str, tuple[WSGIApp, Callable[[], None]]] = {
        "ZipSource, cold CRC-32 cache": (zip_app(members), zipsource.crc_cache_clear),
        "ZipSource, warm CRC-32 cache": (zip_app(members), lambda: None),
        "plain file, the same bytes": (file_app(plain), lambda: None),
    }
    rows = []
    for name, (app, before) in cases.items():
        firsts, totals = [], []
        for _ in range(runs):
            before()
            first, total, body = serve(app)
            if body != expected:
                raise BenchError(f"{name}: wrong bytes")
            firsts.append(first)
            totals.append(total)
        first, total = statistics.median(firsts), statistics.median(totals)
        rows.append([f"{name} ({count:,} files of {size // KiB} KiB)",
                     f"{first * 1000:.2f} ms", f"{total * 1000:.1f} ms",
                     f"{len(expected) / MiB / total:.0f} MiB/s"])
    return rows


def range_case(work: Path, runs: int) -> list[list[str]]:
    big = work / "big.bin"
    block = os.urandom(MiB)
    with open(big, "wb") as file:
        for index in range(64):
            file.write(block[index:] + block[:index])
    members = [("small.txt", str(make_tree(work / "small", 1, 100)[0][1])),
               ("big.bin", str(big))]
    app = zip_app(members)
    offset = ZipSource(members)._members[1].data_offset + 32 * MiB
    expected = big.read_bytes()[32 * MiB:33 * MiB]
    rows = []
    for label, value in (("1 MiB range in a 64 MiB member", f"bytes={offset}-{offset + MiB - 1}"),):
        reads, totals = [], []
        for _ in range(runs):
            zipsource.crc_cache_clear()
            before = bytes_read()
            _first, total, body = serve(app, value)
            reads.append(bytes_read() - before)
            totals.append(total)
            if body != expected:
                raise BenchError(f"{label}: wrong bytes")
        rows.append([label, f"{statistics.median(reads) / MiB:.2f} MiB read",
                     f"{statistics.median(totals) * 1000:.1f} ms", ""])
    return rows


def table(rows: list[list[str]]) -> str:
    head = ["case", "first byte", "last byte", "throughput"]
    lines = ["| " + " | ".join(head) + " |", "| --- | ---: | ---: | ---: |"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of each case")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--file-kib", type=int, default=16)
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="rangewsgi-zip-bench-") as temp:
        work = Path(temp)
        rows = whole_cases(work, args.files, args.file_kib * KiB, runs)
        rows += range_case(work, runs)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
