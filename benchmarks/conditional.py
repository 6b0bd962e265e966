"""What conditional requests cost and save: a 304 against a full 200, in process and over
gunicorn, and what precondition handling adds to a request that has none.

    python benchmarks/conditional.py          # prints a markdown table of medians
    python benchmarks/conditional.py --quick  # fewer rounds, shorter wrk runs

Every case is verified (status and bytes) before it is timed; no timing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import apps
from benchmarks.common import (
    BenchError,
    MiB,
    Sink,
    base_environ,
    calibrate,
    fetch,
    make_data_file,
    median,
    time_batch,
)
from benchmarks.loopback import gunicorn, need, raw_get

SIZE = MiB


def _environ(headers: dict[str, str]) -> dict[str, Any]:
    env = base_environ("/file.bin")
    for name, value in headers.items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def inprocess_cases(path: Path) -> list[tuple[str, Callable[..., Any], dict[str, Any], int]]:
    """(label, app, environ, expected status); file and list bodies."""
    etag = dict(apps.file_headers(path))["ETag"]
    chunks = [path.read_bytes()[i:i + (1 << 16)] for i in range(0, SIZE, 1 << 16)]
    out: list[tuple[str, Callable[..., Any], dict[str, Any], int]] = []
    for body, bare, tag in (("file", apps.bare_file(path), etag),
                            ("list", apps.bare_list(chunks), '"list-body"')):
        ranged = apps.ranged(bare)
        unconditional = apps.ranged(bare, conditional=False)
        out += [
            (f"{body}: bare app, no preconditions (200)", bare, _environ({}), 200),
            (f"{body}: rangewsgi conditional=False, no preconditions (200)", unconditional,
             _environ({}), 200),
            (f"{body}: rangewsgi, no preconditions (200)", ranged, _environ({}), 200),
            (f"{body}: rangewsgi, If-None-Match does not match (200)", ranged,
             _environ({"If-None-Match": '"other"'}), 200),
            (f"{body}: rangewsgi, If-None-Match matches (304)", ranged,
             _environ({"If-None-Match": tag}), 304),
            (f"{body}: rangewsgi, If-Match fails (412)", ranged,
             _environ({"If-Match": '"other"'}), 412),
        ]
    return out


def run_inprocess(path: Path, rounds: int, target: float) -> list[tuple[str, float]]:
    cases = inprocess_cases(path)
    sink = Sink()
    try:
        calls = []
        for label, app, env, status in cases:
            reply = fetch(app, dict(env), sendfile=True)
            if reply.status != status:
                raise BenchError(f"{label}: status {reply.status}, expected {status}")
            if status == 200 and len(reply.body) != SIZE:
                raise BenchError(f"{label}: {len(reply.body)} bytes, expected {SIZE}")
            if status == 304 and reply.body:
                raise BenchError(f"{label}: a 304 with content")

            def call(app: Any = app, env: dict[str, Any] = env) -> object:
                return sink.run(app, env.copy())

            calls.append((label, call, calibrate(call, target)))
        samples: dict[str, list[float]] = {label: [] for label, _, _ in calls}
        for _ in range(rounds):  # interleaved: drift hits every case alike
            for label, call, n in calls:
                samples[label].append(time_batch(call, n).cpu)
    finally:
        sink.close()
    return [(label, median(values) * 1e6) for label, values in samples.items()]


def wrk_rps(url: str, headers: dict[str, str], seconds: int, workdir: Path) -> float:
    """Requests per second at concurrency 16 with wrk."""
    import re
    import subprocess

    script = workdir / "headers.lua"
    script.write_text("".join(f'wrk.headers["{k}"] = \'{v}\'\n' for k, v in headers.items()))
    out = subprocess.run([need("wrk"), "-t1", "-c16", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if out.returncode != 0 or match is None:
        raise BenchError(f"wrk failed: {out.stdout} {out.stderr}")
    if re.search(r"Non-2xx or 3xx responses", out.stdout):
        raise BenchError(f"wrk saw error statuses: {out.stdout}")
    return float(match.group(1))


def run_gunicorn(path: Path, workdir: Path, seconds: int, rounds: int) -> list[tuple[str, float]]:
    etag = dict(apps.file_headers(path))["ETag"]
    with gunicorn("rangewsgi", "gthread", path, workdir) as server:
        full = raw_get(server, "/file.bin", None)
        if full.status != 200 or len(full.body) != SIZE:
            raise BenchError(f"gunicorn: the full answer is {full.status}")
        cases = {"full 200 (1 MiB, sendfile)": {}, "304 (If-None-Match matches)":
                 {"If-None-Match": etag}}
        results: dict[str, list[float]] = {label: [] for label in cases}
        for _ in range(rounds):
            for label, headers in cases.items():
                results[label].append(wrk_rps(server.url + "/file.bin", headers, seconds,
                                              workdir))
    return [(label, median(values)) for label, values in results.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rounds, target, seconds = (5, 0.004, 1) if args.quick else (21, 0.025, 3)
    with tempfile.TemporaryDirectory(prefix="rangewsgi-cond-") as tmp:
        workdir = Path(tmp)
        path = workdir / "file.bin"
        make_data_file(path, SIZE)
        inproc = run_inprocess(path, rounds, target)
        loop = run_gunicorn(path, workdir, seconds, 3 if args.quick else 5)
    print(f"In process, CPU µs per request, median of {rounds} interleaved rounds "
          "(1 MiB body, consumed as gunicorn's sync worker does):\n")
    print("| case | µs |\n|---|---:|")
    for label, value in inproc:
        print(f"| {label} | {value:.2f} |")
    print("\ngunicorn gthread on loopback, wrk -t1 -c16, requests per second (median):\n")
    print("| case | requests/s |\n|---|---:|")
    for label, value in loop:
        print(f"| {label} | {value:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
