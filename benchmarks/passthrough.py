"""What a response the middleware passes on costs: a GET or HEAD with no Range and no
precondition field, default options, in process (no sockets).

    python benchmarks/passthrough.py                  # markdown table, about 20 s
    python benchmarks/passthrough.py --quick          # a few seconds (CI)
    python benchmarks/passthrough.py --only wsgi --json out.json

Three stacks per interface, timed in interleaved rounds: the bare app, the app under a minimal
middleware that only appends one header field (the floor any middleware pays), and the app
under rangewsgi's ``RangeMiddleware``. WSGI: ``app(environ, start_response)``, the body
consumed as gunicorn's sync worker does (``common.Sink``) and closed. ASGI: the app awaited in
one event loop with a receive that gives the request and then waits, and a send that discards.

Every stack's answer is checked first (status, the app's fields, the body); a wrong one exits
non-zero. The targets are printed with whether they are met; they never fail the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.apps import file_headers
from benchmarks.common import (
    BenchError,
    KiB,
    Reply,
    Sink,
    WSGIApp,
    base_environ,
    fetch,
    load_average,
    machine_info,
    make_data_file,
    median,
)

SIZE = 64 * KiB  # above the middleware's file_wrapper_min_size: a file goes to sendfile
CHUNK = 16 * KiB  # the list body: four chunks
STACKS = ("bare", "minimal", "rangewsgi")
FLOOR_FIELD = ("X-Floor", "1")  # what the minimal middleware appends
# Fields rangewsgi may add to a 200 it passes on: Accept-Ranges (RFC 9110 14.3) always, and
# validators generated for a file whose app gave none (8.8.2, 8.8.3).
ADDED_ALWAYS = {"accept-ranges": "bytes"}
ADDED_FOR_FILES = ("etag", "last-modified")

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Timer = Callable[[int], int]  # runs n requests, returns the nanoseconds they took


@dataclass(frozen=True)
class Target:
    over_us: float  # rangewsgi's overhead over the bare app, at most
    ratio: float  # rangewsgi's overhead divided by the minimal middleware's, at most


TARGETS = {"WSGI": Target(1.0, 6.0), "ASGI": Target(2.5, 4.0)}


@dataclass(frozen=True)
class Scenario:
    interface: str  # WSGI or ASGI
    body: str  # list or file
    validators: bool  # the app sends ETag and Last-Modified
    method: str  # GET or HEAD

    @property
    def label(self) -> str:
        kind = "bytes list" if self.body == "list" else (
            "file_wrapper" if self.interface == "WSGI" else "path-send")
        given = "ETag + Last-Modified" if self.validators else "no validators"
        return f"{kind}, {given}, {self.method}"


@dataclass
class Row:
    scenario: Scenario
    timers: dict[str, Timer]
    n: int = 1
    added: str = ""  # the fields rangewsgi added, as checked
    samples: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STACKS})

    def us(self, stack: str) -> float:
        return median(self.samples[stack]) / 1000

    def over_us(self, stack: str) -> float:
        """The median of the per-round differences to the bare app (paired, so that drift
        between rounds cancels)."""
        pairs = zip(self.samples[stack], self.samples["bare"], strict=True)
        return median([a - b for a, b in pairs]) / 1000

    def ratio(self) -> float | None:
        floor = self.over_us("minimal")
        return self.over_us("rangewsgi") / floor if floor > 0 else None


# -- the apps and the minimal middlewares --


def app_fields(path: Path, validators: bool) -> list[tuple[str, str]]:
    """Content-Type and Content-Length, with or without ETag and Last-Modified."""
    return [(n, v) for n, v in file_headers(path)
            if validators or n.lower() not in ADDED_FOR_FILES]


def wsgi_app(path: Path, sc: Scenario) -> WSGIApp:
    fields = app_fields(path, sc.validators)
    data = path.read_bytes()
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]

    def list_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", list(fields))
        return chunks

    def file_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        f = open(path, "rb")  # noqa: SIM115 - closed by the server through the wrapper
        start_response("200 OK", list(fields))
        return environ["wsgi.file_wrapper"](f, CHUNK)

    return list_app if sc.body == "list" else file_app


class FloorWSGI:
    """A WSGI middleware that only appends one header field."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any],
                 ) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, FLOOR_FIELD], exc_info)

        return self.app(environ, start)


def asgi_app(path: Path, sc: Scenario) -> ASGIApp:
    start = {"type": "http.response.start", "status": 200,
             "headers": [(n.lower().encode(), v.encode())
                         for n, v in app_fields(path, sc.validators)]}
    body = {"type": "http.response.body", "body": path.read_bytes()}
    pathsend = {"type": "http.response.pathsend", "path": str(path)}
    last = body if sc.body == "list" else pathsend

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send(last)

    return app


class FloorASGI:
    """An ASGI middleware that only appends one header field, by wrapping send."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.field = (FLOOR_FIELD[0].lower().encode(), FLOOR_FIELD[1].encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_field(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), self.field]}
            await send(message)

        await self.app(scope, receive, send_with_field)


def asgi_scope(method: str) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it, with the path-send extension offered (as Granian
    does): a path-send body then goes to the server in every stack."""
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": "/file.bin",
            "raw_path": b"/file.bin", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000")], "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "extensions": {"http.response.pathsend": {}}}


class _Client:
    """The server's side of one ASGI request: the request, then a wait for the disconnect."""

    __slots__ = ("asked",)

    def __init__(self) -> None:
        self.asked = False

    async def receive(self) -> Message:
        if not self.asked:
            self.asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.get_running_loop().create_future()  # never done: cancelled
        raise AssertionError("unreachable")


async def _discard(message: Message) -> None:
    return None


# -- checking the answers --


def check(stack: str, sc: Scenario, reply: Reply, fields: list[tuple[str, str]],
          data: bytes) -> str:
    """Fail unless ``reply`` is the app's 200 with only the stack's own fields added;
    the added field names."""
    where = f"{sc.interface} {stack}, {sc.label}"
    if reply.status != 200:
        raise BenchError(f"{where}: status {reply.status}")
    # A HEAD's body is dropped by the server (RFC 9110 9.3.2): the app's, or none.
    if reply.body != data and not (sc.method == "HEAD" and reply.body == b""):
        raise BenchError(f"{where}: {len(reply.body)} bytes, not the app's body")
    given = Counter((n.lower(), v) for n, v in reply.headers)
    own = Counter((n.lower(), v) for n, v in fields)
    if own - given:
        raise BenchError(f"{where}: the app's fields {sorted(own - given)} were changed")
    added = {n: v for n, v in given - own}
    expected = _expected_added(stack, sc, {n for n, _ in own}, added)
    if set(added.items()) != expected:
        raise BenchError(f"{where}: fields {sorted(added)} added, expected {sorted(expected)}")
    return ", ".join(sorted(added)) or "none"


def _expected_added(stack: str, sc: Scenario, own: set[str], added: dict[str, str],
                    ) -> set[tuple[str, str]]:
    if stack == "bare":
        return set()
    if stack == "minimal":
        return {(FLOOR_FIELD[0].lower(), FLOOR_FIELD[1])}
    expected = set(ADDED_ALWAYS.items())
    if sc.body == "file" and not own & set(ADDED_FOR_FILES):
        # Generated validators are allowed (their values come from the file's metadata).
        expected |= {(n, v) for n, v in added.items() if n in ADDED_FOR_FILES}
    return expected


async def asgi_reply(app: ASGIApp, scope: dict[str, Any]) -> Reply:
    """One request through ``app``, its messages gathered into a reply."""
    messages: list[Message] = []

    async def collect(message: Message) -> None:
        messages.append(message)

    await app(dict(scope), _Client().receive, collect)
    starts = [m for m in messages if m["type"] == "http.response.start"]
    if len(starts) != 1:
        raise BenchError(f"{len(starts)} http.response.start messages")
    body = b""
    for message in messages[1:]:
        if message["type"] == "http.response.pathsend":
            body += Path(message["path"]).read_bytes()
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")
        else:
            raise BenchError(f"unexpected message {message['type']}")
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in starts[0]["headers"]]
    return Reply(int(starts[0]["status"]), headers, body)


# -- the timed loops --


def wsgi_timer(sink: Sink, app: WSGIApp, environ: dict[str, Any]) -> Timer:
    def timed(n: int) -> int:
        run = sink.run
        t0 = time.perf_counter_ns()
        for _ in range(n):
            run(app, environ.copy())  # a server builds a new environ per request
        return time.perf_counter_ns() - t0

    return timed


def asgi_timer(loop: asyncio.AbstractEventLoop, app: ASGIApp, scope: dict[str, Any]) -> Timer:
    async def batch(n: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await app(dict(scope), _Client().receive, _discard)
        return time.perf_counter_ns() - t0

    def timed(n: int) -> int:
        return loop.run_until_complete(batch(n))

    return timed


def rows_for(interface: str, path: Path, stacks_of: Callable[[Scenario], dict[str, Any]],
             replies: Callable[[Any, Scenario], list[Reply]],
             timer_of: Callable[[Any, Scenario], Timer]) -> list[Row]:
    """A row per scenario, each stack's answers checked before anything is timed."""
    data = path.read_bytes()
    rows = []
    for sc in scenarios(interface):
        stacks = stacks_of(sc)
        added = {}
        for stack, app in stacks.items():
            for reply in replies(app, sc):
                added[stack] = check(stack, sc, reply, app_fields(path, sc.validators), data)
        timers = {stack: timer_of(app, sc) for stack, app in stacks.items()}
        rows.append(Row(sc, timers, added=added["rangewsgi"]))
    return rows


def wsgi_rows(path: Path, sink: Sink) -> list[Row]:
    from rangewsgi import RangeMiddleware

    def stacks(sc: Scenario) -> dict[str, Any]:
        app = wsgi_app(path, sc)
        return {"bare": app, "minimal": FloorWSGI(app), "rangewsgi": RangeMiddleware(app)}

    def environ(sc: Scenario) -> dict[str, Any]:
        return {**base_environ("/file.bin"), "REQUEST_METHOD": sc.method}

    def replies(app: WSGIApp, sc: Scenario) -> list[Reply]:
        # As gunicorn sends the body (sendfile) and as wsgiref does (iteration).
        return [fetch(app, environ(sc), sendfile=sendfile) for sendfile in (True, False)]

    return rows_for("WSGI", path, stacks, replies,
                    lambda app, sc: wsgi_timer(sink, app, environ(sc)))


def asgi_rows(path: Path, loop: asyncio.AbstractEventLoop) -> list[Row]:
    from rangewsgi.asgi import RangeMiddleware

    def stacks(sc: Scenario) -> dict[str, Any]:
        app = asgi_app(path, sc)
        return {"bare": app, "minimal": FloorASGI(app), "rangewsgi": RangeMiddleware(app)}

    def replies(app: ASGIApp, sc: Scenario) -> list[Reply]:
        return [loop.run_until_complete(asgi_reply(app, asgi_scope(sc.method)))]

    return rows_for("ASGI", path, stacks, replies,
                    lambda app, sc: asgi_timer(loop, app, asgi_scope(sc.method)))


def scenarios(interface: str) -> list[Scenario]:
    return [Scenario(interface, body, validators, method)
            for body in ("list", "file") for validators in (True, False)
            for method in ("GET", "HEAD")]


def calibrate(row: Row, batch_ns: int) -> int:
    """Requests per batch: the slowest stack's batch lasts about ``batch_ns``."""
    probe = 50
    slowest = max(timer(probe) for timer in row.timers.values()) / probe
    return max(probe, int(batch_ns / slowest))


def measure(rows: list[Row], rounds: int, batch_ns: int) -> None:
    """Interleaved rounds: each round times every stack of every row once, in a rotating
    order, so that noise and drift hit all stacks alike."""
    for row in rows:
        row.n = calibrate(row, batch_ns)
    for index in range(rounds):
        order = STACKS[index % 3:] + STACKS[:index % 3]
        for row in rows:
            for stack in order:
                gc.collect()
                row.samples[stack].append(row.timers[stack](row.n) / row.n)


# -- the report --


def _mark(value: float | None, limit: float) -> str:
    return "-" if value is None else ("yes" if value <= limit else "**no**")


def table(rows: list[Row]) -> list[str]:
    lines = ["| Interface | Body, app's validators, method | bare µs | minimal µs | rangewsgi µs"
             " | minimal - bare µs | rangewsgi - bare µs | ratio | rangewsgi added |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        ratio = row.ratio()
        lines.append(
            f"| {row.scenario.interface} | {row.scenario.label} | {row.us('bare'):.2f}"
            f" | {row.us('minimal'):.2f} | {row.us('rangewsgi'):.2f}"
            f" | {row.over_us('minimal'):+.2f} | {row.over_us('rangewsgi'):+.2f}"
            f" | {'-' if ratio is None else f'{ratio:.1f} x'} | {row.added} |")
    return lines


def targets(rows: list[Row]) -> list[str]:
    """Each target against every row: how many rows meet it, and the worst row."""
    lines = ["| Target | Rows meeting it | Worst row | Worst value | Met |",
             "|---|---:|---|---:|:---:|"]
    for interface, target in TARGETS.items():
        mine = [r for r in rows if r.scenario.interface == interface]
        if not mine:
            continue
        over = [(r.over_us("rangewsgi"), r) for r in mine]
        ratios = [(r.ratio(), r) for r in mine]
        worst_over, row_over = max(over, key=lambda p: p[0])
        known = [(v, r) for v, r in ratios if v is not None]
        ok = sum(v <= target.over_us for v, _ in over)
        lines.append(f"| {interface}: rangewsgi - bare <= {target.over_us} µs | {ok} of "
                     f"{len(mine)} | {row_over.scenario.label} | {worst_over:+.2f} µs | "
                     f"{_mark(worst_over, target.over_us)} |")
        if known:
            worst_ratio, row_ratio = max(known, key=lambda p: p[0])
            ok = sum(v <= target.ratio for v, _ in known)
            lines.append(f"| {interface}: (rangewsgi - bare) / (minimal - bare) <= "
                         f"{target.ratio} x | {ok} of {len(known)} | "
                         f"{row_ratio.scenario.label} | {worst_ratio:.1f} x | "
                         f"{_mark(worst_ratio, target.ratio)} |")
    return lines


def tree() -> tuple[str, str]:
    """Where rangewsgi is imported from, and that tree's commit (``-dirty`` if changed)."""
    import rangewsgi

    where = Path(rangewsgi.__file__).resolve().parent.parent
    proc = subprocess.run(["git", "-C", str(where), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False)
    return str(where), proc.stdout.strip() or "?"


def as_json(rows: list[Row], meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "rows": [{
        "interface": r.scenario.interface, "body": r.scenario.body,
        "validators": r.scenario.validators, "method": r.scenario.method, "n": r.n,
        "added": r.added, "ratio": r.ratio(),
        **{f"{s}_us": r.us(s) for s in STACKS},
        **{f"{s}_over_us": r.over_us(s) for s in ("minimal", "rangewsgi")},
    } for r in rows]}


def run(interfaces: list[str], rounds: int, batch_ns: int) -> list[Row]:
    rows: list[Row] = []
    sink = Sink()
    loop = asyncio.new_event_loop()
    try:
        with tempfile.TemporaryDirectory(prefix="rangewsgi-passthrough-") as tmp:
            path = Path(tmp) / "file.bin"
            make_data_file(path, SIZE)
            if "wsgi" in interfaces:
                rows += wsgi_rows(path, sink)
            if "asgi" in interfaces:
                rows += asgi_rows(path, loop)
            measure(rows, rounds, batch_ns)
    finally:
        loop.close()
        sink.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds (a smoke run)")
    parser.add_argument("--only", choices=("wsgi", "asgi"), help="one interface")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures")
    args = parser.parse_args()
    rounds, batch_ns = (5, 1_000_000) if args.quick else (41, 3_000_000)
    interfaces = [args.only] if args.only else ["wsgi", "asgi"]
    where, commit = tree()
    info = machine_info()
    meta = {"command": "python " + " ".join(sys.argv), "rangewsgi": f"{where} ({commit})",
            "CPU": info["CPU"], "cores": info["cores"], "Python": info["Python"],
            "rounds": rounds, "load before": load_average()}
    started = time.monotonic()
    try:
        rows = run(interfaces, rounds, batch_ns)
    except BenchError as exc:
        raise SystemExit(f"wrong answer: {exc}") from exc
    meta["load after"] = load_average()
    meta["seconds"] = round(time.monotonic() - started, 1)
    print("\n".join(f"- {k}: {v}" for k, v in meta.items()))
    print(f"\nMicroseconds per request, median of {rounds} interleaved rounds "
          f"(time.perf_counter_ns); overheads are medians of per-round differences.\n")
    print("\n".join(table(rows)))
    print("\nTargets (reported, never enforced):\n")
    print("\n".join(targets(rows)))
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(rows, meta), indent=2) + "\n")


if __name__ == "__main__":
    main()
