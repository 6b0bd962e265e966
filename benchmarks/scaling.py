"""Scaling: cost against the number of ranges and the body size; peak memory in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import apps
from benchmarks.common import (
    ROOT,
    BenchError,
    GiB,
    KiB,
    MiB,
    Sink,
    WSGIApp,
    base_environ,
    calibrate,
    check_reply,
    expect_ranges,
    fetch,
    make_data_file,
    median,
    time_batch,
    with_range,
)

RANGE_COUNTS = (1, 2, 5, 10, 20, 50, 100)
CHUNK = 64 * KiB
SUFFIX = "bytes=-100"


def ranges_spec(count: int) -> tuple[str, list[tuple[int, int]]]:
    """``count`` ascending 1000-byte ranges, 10000 bytes apart (too far apart to coalesce)."""
    ranges = [(k * 10_000, k * 10_000 + 999) for k in range(count)]
    return "bytes=" + ",".join(f"{a}-{b}" for a, b in ranges), ranges


def by_range_count(workdir: Path, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    path = workdir / "ranges.bin"
    make_data_file(path, MiB, seed=3)
    data = path.read_bytes()
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    options = apps.range_options()
    bodies: dict[str, WSGIApp] = {
        "file": apps.ranged(apps.bare_file(path), **options),
        "list": apps.ranged(apps.bare_list(chunks), **options),
    }
    rounds = 3 if quick else 11
    target = 0.004 if quick else 0.02
    sink = Sink()
    cases = []
    try:
        for body, app in bodies.items():
            for count in RANGE_COUNTS:
                spec, ranges = ranges_spec(count)
                env = with_range(base_environ(), spec)
                for sendfile in (True, False):
                    reply = fetch(app, dict(env), sendfile=sendfile)
                    if check_reply(reply, data, len(data)).split()[0] != "206":
                        raise BenchError(f"{count} ranges, {body} body: status {reply.status}")
                    expect_ranges(reply, ranges, len(data))
                call = _call(sink, app, env)
                cases.append({"body": body, "ranges": count, "call": call,
                              "n": calibrate(call, target), "samples": []})
        for _ in range(rounds):
            for case in cases:
                case["samples"].append(time_batch(case["call"], case["n"]))
    finally:
        sink.close()
    log(f"scaling: 1 to {RANGE_COUNTS[-1]} ranges measured ({rounds} rounds)")
    return {"options": options, "rows": [
        {"body": c["body"], "ranges": c["ranges"],
         "median_us": median([s.cpu for s in c["samples"]]) * 1e6}
        for c in cases]}


def _call(sink: Sink, app: WSGIApp, env: dict[str, Any]) -> Callable[[], object]:
    return lambda: sink.run(app, env.copy())


def sizes(quick: bool) -> list[int]:
    return [MiB, 16 * MiB, 64 * MiB] if quick else [MiB, 16 * MiB, 256 * MiB, GiB, 10 * GiB]


def sparse_file(workdir: Path, size: int) -> Path:
    path = workdir / f"sparse-{size}.bin"
    if not path.exists():
        with open(path, "wb") as f:
            f.truncate(size)
    return path


def by_size(workdir: Path, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """``bytes=-100`` on file bodies (seek) and generator bodies (skip), 1 MiB and up."""
    chunk = apps.pattern_chunk(CHUNK)
    expected = apps.pattern_slice(CHUNK)
    rows = []
    sink = Sink()
    try:
        for size in sizes(quick):
            path = sparse_file(workdir, size)
            gen_slice: Callable[[int, int], bytes] = expected
            variants: list[tuple[str, WSGIApp, Callable[[int, int], bytes] | bytes]] = [
                ("file", apps.ranged(apps.bare_file(path)), lambda a, b: bytes(b - a)),
                ("generator", apps.ranged(apps.bare_generator(size, chunk)), gen_slice),
                ("generator, no middleware (200)", apps.bare_generator(size, chunk),
                 gen_slice),
            ]
            env = with_range(base_environ(), SUFFIX)
            for kind, app, data in variants:
                reply = fetch(app, dict(env), sendfile=True) if size <= 64 * MiB else None
                if reply is not None:
                    outcome = check_reply(reply, data, size)
                    if outcome != ("200" if "no middleware" in kind else "206"):
                        raise BenchError(f"{kind} {size}: {outcome}")
                    if outcome == "206":
                        expect_ranges(reply, [(size - 100, size - 1)], size)
                call = _call(sink, app, env)
                sent = sink.run(app, env.copy())
                want = size if "no middleware" in kind else 100
                if sent != want:
                    raise BenchError(f"{kind} body of {size} bytes: {sent} bytes sent, "
                                     f"want {want}")
                reps = 3 if quick or size >= GiB else 7
                n = calibrate(call, 0.01)
                samples = [time_batch(call, n) for _ in range(reps)]
                seconds = median([s.cpu for s in samples])
                rows.append({"kind": kind, "size": size, "median_us": seconds * 1e6,
                             "gb_per_s": size / seconds / 1e9})
                log(f"  {kind:32} {size / MiB:8.0f} MiB  {seconds * 1e6:12.1f} us"
                    f"  {size / seconds / 1e9:8.2f} GB/s")
    finally:
        sink.close()
    return {"range": SUFFIX, "chunk": CHUNK, "rows": rows}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"no {field} in /proc/self/status")


def rss_child(kind: str, size: int, range_value: str, workdir: Path) -> dict[str, Any]:
    """Run in a fresh interpreter: serve one request by iteration, report peak RSS."""
    chunk = apps.pattern_chunk(CHUNK)
    if kind == "file":
        app = apps.ranged(apps.bare_file(sparse_file(workdir, size)))
    elif kind == "generator":
        app = apps.ranged(apps.bare_generator(size, chunk))
    elif kind == "control: body joined in memory":
        # Shows that the measurement sees a body held in memory (it must grow by ``size``).
        inner = apps.bare_generator(size, chunk)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            return [b"".join(inner(environ, start_response))]
    else:
        app = apps.bare_generator(size, chunk)
    env = with_range(base_environ(), range_value or None)
    sink = Sink()
    sink.run(apps.bare_list([b"warm-up"]), base_environ())
    with contextlib.suppress(OSError):  # Reset the high-water mark to the current RSS.
        Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    sent = sink.run(app, env, iterate=True)
    seconds = time.perf_counter() - t0
    sink.close()
    return {"kind": kind, "size": size, "range": range_value, "sent": sent,
            "status": sink.status, "seconds": seconds,
            "rss_before_kib": before, "peak_kib": _status_kib("VmHWM")}


def peak_rss(workdir: Path, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    rows = []
    plans = [("file", SUFFIX), ("file", "bytes=1-"), ("generator", SUFFIX),
             ("generator", "bytes=1-"), ("generator, no middleware", "")]
    for size in sizes(quick):
        sparse_file(workdir, size)
        control = [("control: body joined in memory", "")] if size <= 256 * MiB else []
        for kind, rng in plans + control:
            cmd = [sys.executable, "-m", "benchmarks.scaling", "--rss-child", kind, str(size),
                   rng, str(workdir)]
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH"))
                                                if p)
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env,
                                 timeout=600, check=False)
            if out.returncode != 0:
                raise BenchError(f"RSS child failed: {out.stderr[-2000:]}")
            row = json.loads(out.stdout)
            want = {SUFFIX: 100, "bytes=1-": size - 1, "": size}[rng]
            if row["sent"] != want:
                raise BenchError(f"RSS child {kind} {rng} {size}: sent {row['sent']}, "
                                 f"want {want}")
            rows.append(row)
            log(f"  peak RSS {kind:26} {rng or '(no Range)':12} {size / MiB:8.0f} MiB  "
                f"{row['peak_kib'] / 1024:7.1f} MiB (before {row['rss_before_kib'] / 1024:.1f})"
                f"  {row['seconds']:.2f} s")
    return {"rows": rows}


def run(workdir: Path, *, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    return {"ranges": by_range_count(workdir, quick, log),
            "size": by_size(workdir, quick, log),
            "rss": peak_rss(workdir, quick, log)}


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--rss-child":
        print(json.dumps(rss_child(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                                   Path(sys.argv[5]))))
    else:
        sys.exit("usage: python -m benchmarks.scaling --rss-child KIND SIZE RANGE WORKDIR")
