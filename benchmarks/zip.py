"""ZipSource against a plain file: time to first byte, throughput, bytes read for a range.

    python benchmarks/zip.py            # 1,000 files of 16 KiB, 64 MiB member, 5 runs
    python benchmarks/zip.py --quick    # 1 run of each case
    python benchmarks/zip.py --big      # and one 4 GiB member (sparse), 3 runs of it

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

With ``--big`` (opt-in: it writes a sparse 4 GiB file and reads 4 GiB per run), a ZIP of
one member of 4 GiB and 12,345 bytes (ZIP64) against the same archive bytes as a plain
file, each run in a fresh process (the "server": it runs the app and consumes the body as a
server would): time to the first byte, to the last, throughput, and the peak RSS of that
process (``VmHWM``) over its RSS before the request: flat, whatever the archive's size.
Each case is checked once more with a CRC-32 of every byte it sent (not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchmarks  # noqa: F401  (puts tests/ on the import path)
from benchmarks.common import BenchError, GiB, KiB, MiB, base_environ
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


BIG = 4 * GiB + 12_345  # beyond ZIP's 4-byte sizes: ZIP64


def make_big(work: Path) -> tuple[Path, Path, int]:
    """A sparse member of ``BIG`` bytes, the archive of it as a sparse plain file, and the
    archive's CRC-32 (of every byte)."""
    member = work / "big.bin"
    with open(member, "wb") as file:
        file.truncate(BIG)
        file.seek(BIG - 5)
        file.write(b"tail!")
    plain = work / "big.zip"
    crc = 0
    with open(plain, "wb") as file:
        for chunk in ZipSource([("big.bin", str(member))], block_size=4 * MiB):
            crc = zlib.crc32(chunk, crc)
            if chunk.strip(b"\0"):
                file.write(chunk)
            else:
                file.seek(len(chunk), os.SEEK_CUR)  # zeros: a hole, the file stays sparse
        file.truncate()
    return member, plain, crc


def memory_kib(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (the peak) of this process, in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {field} in /proc/self/status")


def serve_once(case: str, member: Path, plain: Path, check: bool) -> dict[str, Any]:
    """One whole GET of ``case`` in this process, its body consumed chunk by chunk."""
    app = zip_app([("big.bin", str(member))]) if case == "zip" else file_app(plain)
    # proc(5), /proc/pid/clear_refs: "5" resets the peak RSS (VmHWM) to the current RSS, so
    # that the peak is this request's, not the imports'.
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")
    before = memory_kib("VmRSS")
    statuses: list[str] = []
    started = time.perf_counter()
    result = app(base_environ("/all.zip"), lambda status, headers, exc_info=None:
                 statuses.append(status))
    first, count, crc = 0.0, 0, 0
    try:
        for chunk in result:
            if chunk and not first:
                first = time.perf_counter() - started
            count += len(chunk)
            if check:
                crc = zlib.crc32(chunk, crc)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    total = time.perf_counter() - started
    if not statuses or not statuses[0].startswith("200"):
        raise BenchError(f"{case}: status {statuses}")
    return {"first": first, "total": total, "bytes": count, "crc": crc,
            "rss_before_kib": before, "peak_kib": memory_kib("VmHWM")}


def run_fresh(case: str, member: Path, plain: Path, check: bool) -> dict[str, Any]:
    """``serve_once`` in a fresh Python process: its peak RSS is this request's."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-once", case,
           str(member), str(plain)] + (["--check"] if check else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise BenchError(f"{case}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def big_cases(work: Path, runs: int) -> list[list[str]]:
    member, plain, crc = make_big(work)
    size = plain.stat().st_size
    rows = []
    for case, label in (("zip", "ZipSource, one member of 4 GiB"),
                        ("plain", "plain file, the same bytes")):
        checked = run_fresh(case, member, plain, check=True)
        if (checked["bytes"], checked["crc"]) != (size, crc):
            raise BenchError(f"{label}: wrong bytes")
        timed = [run_fresh(case, member, plain, check=False) for _ in range(runs)]
        first = statistics.median(r["first"] for r in timed)
        total = statistics.median(r["total"] for r in timed)
        growth = max(r["peak_kib"] - r["rss_before_kib"] for r in [*timed, checked])
        rows.append([f"{label} ({size / GiB:.2f} GiB)", f"{first * 1000:.2f} ms",
                     f"{total:.2f} s", f"{size / MiB / total:.0f} MiB/s",
                     f"{growth / 1024:.1f} MiB"])
    return rows


def table(rows: list[list[str]], head: tuple[str, ...] = (
        "case", "first byte", "last byte", "throughput")) -> str:
    lines = ["| " + " | ".join(head) + " |",
             "| --- |" + " ---: |" * (len(head) - 1)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of each case")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--file-kib", type=int, default=16)
    parser.add_argument("--big", action="store_true",
                        help="also the 4 GiB member (a sparse file; some seconds a run)")
    parser.add_argument("--big-runs", type=int, default=3)
    parser.add_argument("--serve-once", nargs=3, metavar=("CASE", "MEMBER", "PLAIN"),
                        help=argparse.SUPPRESS)  # the fresh process of a --big run
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_once:
        case, member, plain = args.serve_once
        print(json.dumps(serve_once(case, Path(member), Path(plain), args.check)))
        return 0
    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="rangewsgi-zip-bench-") as temp:
        work = Path(temp)
        rows = whole_cases(work, args.files, args.file_kib * KiB, runs)
        rows += range_case(work, runs)
        print(table(rows))
        if args.big:
            big = big_cases(work, 1 if args.quick else args.big_runs)
            print()
            print(table(big, ("case", "first byte", "last byte", "throughput",
                              "peak RSS growth")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
