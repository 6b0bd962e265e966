"""In-process per-request cost: the WSGI app called directly, the body consumed like gunicorn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import apps
from benchmarks.common import (
    BenchError,
    MiB,
    Sample,
    Sink,
    WSGIApp,
    base_environ,
    calibrate,
    check_reply,
    expect_ranges,
    fetch,
    load_average,
    make_data_file,
    median,
    time_batch,
    with_range,
)

SIZE = MiB


@dataclass(frozen=True)
class Scenario:
    name: str
    range_value: str | None
    # What rangewsgi must answer: the status and the exact (first, last) ranges.
    status: int
    ranges: tuple[tuple[int, int], ...] = ()


def scenarios(size: int = SIZE) -> list[Scenario]:
    ten = tuple((k * size // 10, k * size // 10 + 1023) for k in range(10))
    spec = ",".join(f"{a}-{b}" for a, b in ten)
    mid = size // 4
    return [
        Scenario("no Range", None, 200),
        Scenario("single range (64 KiB)", f"bytes={mid}-{mid + 65535}", 206,
                 ((mid, mid + 65535),)),
        Scenario("10 ranges (multipart)", f"bytes={spec}", 206, ten),
        Scenario("416", f"bytes={size * 2}-", 416),
    ]


@dataclass
class Case:
    body: str
    impl: str
    scenario: Scenario
    app: WSGIApp
    environ: dict[str, Any]
    outcome: str = ""
    samples: list[Sample] = field(default_factory=list)
    n: int = 1


def build_apps(workdir: Path, size: int) -> tuple[dict[str, dict[str, WSGIApp]], bytes]:
    path = workdir / "file.bin"
    make_data_file(path, size)
    data = path.read_bytes()
    chunks = [data[i:i + (1 << 16)] for i in range(0, size, 1 << 16)]
    table = {
        "file": {
            "bare app": apps.bare_file(path),
            "rangewsgi": apps.ranged(apps.bare_file(path)),
            "Werkzeug send_file": apps.werkzeug_send_file(path),
            "WebOb FileApp": apps.webob_fileapp(path),
            "WhiteNoise": apps.whitenoise_dir(path),
        },
        "list": {
            "bare app": apps.bare_list(chunks),
            "rangewsgi": apps.ranged(apps.bare_list(chunks)),
            "Werkzeug make_conditional": apps.werkzeug_list(chunks),
            "WebOb conditional_response": apps.webob_list(chunks),
        },
    }
    return table, data


def verify(case: Case, data: bytes) -> str:
    """Check the bytes served, both as gunicorn (sendfile) and as wsgiref (iteration) sees them."""
    outcomes = set()
    for sendfile in (True, False):
        reply = fetch(case.app, dict(case.environ), sendfile=sendfile)
        try:
            outcomes.add(check_reply(reply, data, len(data)))
        except BenchError as exc:
            if case.impl == "rangewsgi":
                raise BenchError(f"rangewsgi, {case.body} body, {case.scenario.name}: {exc}"
                                 ) from exc
            return f"wrong: {exc}"
        if case.impl == "rangewsgi":
            if reply.status != case.scenario.status:
                raise BenchError(f"rangewsgi, {case.body} body, {case.scenario.name}: "
                                 f"status {reply.status}, expected {case.scenario.status}")
            if case.scenario.ranges:
                expect_ranges(reply, case.scenario.ranges, len(data))
    if len(outcomes) != 1:
        return "differs between sendfile and iteration: " + ", ".join(sorted(outcomes))
    return outcomes.pop()


def runner(sink: Sink, app: WSGIApp, environ: dict[str, Any]) -> Callable[[], object]:
    run = sink.run
    return lambda: run(app, environ.copy())


def run(workdir: Path, *, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    rounds = 5 if quick else 21
    target = 0.004 if quick else 0.025
    table, data = build_apps(workdir, SIZE)
    cases = []
    for body, impls in table.items():
        for impl, app in impls.items():
            for sc in scenarios(SIZE):
                env = with_range(base_environ("/file.bin"), sc.range_value)
                cases.append(Case(body, impl, sc, app, env))
    sink = Sink()
    try:
        for case in cases:
            case.outcome = verify(case, data)
            call = runner(sink, case.app, case.environ)
            call()
            case.n = calibrate(call, target)
        log(f"in-process: {len(cases)} cases verified, {rounds} interleaved rounds")
        # Interleave: every round times every case once, so drift hits all of them alike.
        for _ in range(rounds):
            for case in cases:
                case.samples.append(time_batch(runner(sink, case.app, case.environ), case.n))
    finally:
        sink.close()
    results: dict[str, Any] = {"size": SIZE, "rounds": rounds, "load": load_average(),
                               "scenarios": [
        {"name": s.name, "range": s.range_value} for s in scenarios(SIZE)], "cases": []}
    for case in cases:
        results["cases"].append({
            "body": case.body, "impl": case.impl, "scenario": case.scenario.name,
            "outcome": case.outcome, "n": case.n,
            "median_us": median([s.cpu for s in case.samples]) * 1e6,
            "min_us": min(s.cpu for s in case.samples) * 1e6,
            "max_us": max(s.cpu for s in case.samples) * 1e6,
            "wall_median_us": median([s.wall for s in case.samples]) * 1e6,
        })
    return results


def lookup(results: dict[str, Any], body: str, impl: str, scenario: str) -> float:
    for case in results["cases"]:
        if (case["body"], case["impl"], case["scenario"]) == (body, impl, scenario):
            return float(case["median_us"])
    raise KeyError((body, impl, scenario))
