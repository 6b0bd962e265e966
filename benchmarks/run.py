"""Run the rangewsgi benchmarks.

    python benchmarks/run.py          # everything; rewrites docs/benchmarks.md, docs/bench-*.png
    python benchmarks/run.py --quick  # small sizes, few repetitions (CI); writes benchmarks/out/
    python benchmarks/run.py --only inprocess --profile
    python benchmarks/dos_shapes.py   # the abusive-header tables of docs/security.md

No timing is asserted anywhere. The run exits non-zero when something is broken: wrong bytes
or status from rangewsgi, a server that does not start, a missing tool.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import dos_shapes, inprocess, loopback, report, scaling
from benchmarks.common import ROOT, BenchError, load_average, machine_info

SECTIONS = {"inprocess": inprocess.run, "loopback": loopback.run, "scaling": scaling.run}
OUT = ROOT / "benchmarks" / "out"
DOCS = ROOT / "docs"


def log(message: str) -> None:
    print(message, flush=True)


def profile(workdir: Path, outdir: Path) -> list[Path]:
    """pyinstrument profiles of rangewsgi's hot paths, as text files."""
    from pyinstrument import Profiler

    from benchmarks.common import Sink, base_environ, with_range

    table, _ = inprocess.build_apps(workdir, inprocess.SIZE)
    sc = {s.name: s for s in inprocess.scenarios(inprocess.SIZE)}
    plans = [("file", "single range (64 KiB)"), ("list", "single range (64 KiB)"),
             ("list", "no Range"), ("file", "no Range"), ("file", "10 ranges (multipart)")]
    written = []
    sink = Sink()
    try:
        for body, name in plans:
            app = table[body]["rangewsgi"]
            env = with_range(base_environ(), sc[name].range_value)
            profiler = Profiler(interval=0.0001)
            profiler.start()
            deadline = time.perf_counter() + 2.0
            while time.perf_counter() < deadline:
                for _ in range(100):
                    sink.run(app, env.copy())
            profiler.stop()
            path = outdir / f"profile-{body}-{name.split(' (')[0].replace(' ', '-')}.txt"
            path.write_text(profiler.output_text(unicode=True, color=False))
            written.append(path)
            log(f"profile written: {path}")
    finally:
        sink.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repetitions (under 2 minutes); for CI")
    parser.add_argument("--write", action="store_true",
                        help="rewrite docs/benchmarks.md and docs/bench-*.png even when quick "
                             "or partial")
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS),
                        help="run only this section (repeatable)")
    parser.add_argument("--profile", action="store_true",
                        help="also write pyinstrument profiles of rangewsgi to benchmarks/out/")
    parser.add_argument("--render", metavar="RESULTS_JSON", type=Path,
                        help="measure nothing: rebuild the Markdown and plots from a saved run")
    args = parser.parse_args(argv)

    if args.render is not None:
        saved = json.loads(args.render.read_text())
        publish(saved, to_docs=args.write or not saved["quick"])
        return 0

    started = time.time()
    sections = args.only or list(SECTIONS)
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "quick": args.quick,
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc)
        .strftime("%Y-%m-%d %H:%M"),
        "command": shlex.join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "load": {},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="rangewsgi-bench-") as tmp:
            for name in sections:
                workdir = Path(tmp) / name
                workdir.mkdir()
                t0 = time.perf_counter()
                before = load_average()
                results[name] = SECTIONS[name](workdir, quick=args.quick, log=log)
                results["load"][name] = [before, load_average()]
                log(f"{name}: {time.perf_counter() - t0:.1f} s")
            if args.only is None:
                # Abusive Range headers (CVE-2011-3192 and friends): time against header length.
                (OUT / "dos-shapes.md").write_text(dos_shapes.main(args.quick))
                log(f"wrote {OUT / 'dos-shapes.md'}")
            if args.profile:
                workdir = Path(tmp) / "profile"
                workdir.mkdir()
                profile(workdir, OUT)
    except BenchError as exc:
        log(f"BENCHMARK FAILED: {exc}")
        return 1
    results["elapsed_s"] = time.time() - started

    (OUT / ("results-quick.json" if args.quick else "results.json")).write_text(
        json.dumps(results, indent=1))
    publish(results, to_docs=args.write or (not args.quick and args.only is None))
    return 0


def publish(results: dict[str, Any], *, to_docs: bool) -> None:
    """Write the plots and the Markdown: into docs/ (full runs) or benchmarks/out/."""
    outdir = DOCS if to_docs else OUT
    names = report.plots(results, outdir)
    generated = report.markdown(results, names)
    if to_docs:
        report.write_markdown(DOCS / "benchmarks.md", generated)
        log(f"wrote {DOCS / 'benchmarks.md'} and {', '.join(names)} in {DOCS}")
    else:
        (OUT / "benchmarks.md").write_text(generated)
        log(f"wrote {OUT / 'benchmarks.md'} and {', '.join(names)} in {OUT}")
    for h in report.headlines(results):
        flag = "" if h["met"] is None else (" (target met)" if h["met"] else " (TARGET MISSED)")
        log(f"  {h['label']}: {h['value']:.2f} {h['unit']}{flag}")
    log(f"total {results['elapsed_s']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
