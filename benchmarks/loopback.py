"""Over loopback: gunicorn (sync, gthread) and nginx, timed with curl and wrk."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from support import HOST, RawClient, Server, free_port, start_server

from benchmarks.common import (
    ROOT,
    BenchError,
    GiB,
    KiB,
    MiB,
    Reply,
    check_reply,
    expect_ranges,
    make_data_file,
    median,
    read_slice,
)

WORKERS = 2
THREADS = 8
WRK_RANGE = (4 * KiB, 8 * KiB - 1)


def need(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise BenchError(f"{tool} is not installed (apt-get install {tool})")
    return exe


@contextmanager
def gunicorn(app: str, worker: str, path: Path, logdir: Path) -> Iterator[Server]:
    port = free_port()
    # gunicorn turns a sync worker with --threads > 1 into gthread: give threads to gthread only.
    threads = ["--threads", str(THREADS)] if worker == "gthread" else []
    cmd = [sys.executable, "-m", "gunicorn", "-b", f"{HOST}:{port}", "-w", str(WORKERS),
           "-k", worker, *threads, "--timeout", "300", "--log-level", "warning",
           "benchmarks.apps:from_env()"]
    env = {"BENCH_APP": app, "BENCH_FILE": str(path)}
    server = start_server(cmd, port, env=env, cwd=ROOT,
                          log_path=logdir / f"gunicorn-{worker}-{app}.log")
    try:
        yield server
    finally:
        server.stop()


NGINX_CONF = """\
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


@contextmanager
def nginx(path: Path, logdir: Path) -> Iterator[Server]:
    exe = need("nginx")
    port = free_port()
    confdir = logdir / "nginx"
    confdir.mkdir(exist_ok=True)
    conf = confdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=WORKERS, dir=confdir, host=HOST, port=port,
                                      root=path.parent))
    # nginx workers drop root privileges: they must be able to reach the file, whose
    # directories (made by tempfile) are private to us.
    top = Path(tempfile.gettempdir()).resolve()
    for p in (confdir, *path.resolve().parents):
        if p == top or top not in p.parents:
            break
        os.chmod(p, 0o755)
    os.chmod(path, 0o644)
    cmd = [exe, "-p", str(confdir), "-c", str(conf), "-e", str(confdir / "error.log"),
           "-g", "daemon off;"]
    server = start_server(cmd, port, log_path=confdir / "stdout.log")
    try:
        yield server
    finally:
        server.stop()


def raw_get(server: Server, target: str, range_value: str | None) -> Reply:
    """One request on a fresh connection (sync workers close after each response)."""
    headers = {"Range": range_value} if range_value else {}
    with RawClient(server.port) as client:
        resp = client.request(target, headers)
        if resp.header("Connection") != "close":
            client.assert_idle()
    return Reply(resp.status, resp.headers, resp.body)


def verify_server(server: Server, path: Path, strict: bool, full_hash: bool) -> str:
    """Check a few ranges byte for byte (and optionally all of ``bytes=1-``)."""
    size = path.stat().st_size
    data = read_slice(path)
    target = "/" + path.name
    checks: list[tuple[str, tuple[int, int]]] = [
        (f"bytes={WRK_RANGE[0]}-{WRK_RANGE[1]}", WRK_RANGE),
        ("bytes=-100", (size - 100, size - 1)),
        (f"bytes={size - 5000}-", (size - 5000, size - 1)),
    ]
    try:
        for value, want in checks:
            reply = raw_get(server, target, value)
            if check_reply(reply, data, size) != "206":
                raise BenchError(f"{value}: status {reply.status}")
            expect_ranges(reply, [want], size)
        if full_hash:
            hash_transfer(server, target, path)
    except BenchError as exc:
        if strict:
            raise
        return f"wrong: {exc}"
    return "ok"


def hash_transfer(server: Server, target: str, path: Path) -> None:
    """Stream ``bytes=1-`` and compare its SHA-256 with the file's from offset 1."""
    want = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(1)
        while block := f.read(4 * MiB):
            want.update(block)
    conn = http.client.HTTPConnection(HOST, server.port, timeout=120)
    try:
        conn.request("GET", target, headers={"Range": "bytes=1-"})
        resp = conn.getresponse()
        got = hashlib.sha256()
        n = 0
        while block := resp.read(4 * MiB):
            got.update(block)
            n += len(block)
    finally:
        conn.close()
    if resp.status != 206 or n != path.stat().st_size - 1 or got.digest() != want.digest():
        raise BenchError(f"bytes=1- over loopback: status {resp.status}, {n} bytes, "
                         f"sha256 {'ok' if got.digest() == want.digest() else 'WRONG'}")


_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu(server: Server) -> float:
    """CPU seconds (user + system, all threads) used so far by the server's process group.

    Unlike wall-clock time this does not grow when other load on the machine delays the
    server, so it is the steadier measure of what a request costs the server.
    """
    pgid = server.proc.pid
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # Fields after the command: state ppid pgrp session ... utime(12) stime(13).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


_CURL_FMT = "%{http_code} %{size_download} %{time_total}"


def curl_once(server: Server, target: str, range_value: str | None,
              expect: tuple[int, int]) -> tuple[float, float]:
    """Seconds to fetch into /dev/null (curl's time_total) and the server's CPU seconds.

    The status and the number of bytes are checked.
    """
    cpu0 = group_cpu(server)
    cmd = [need("curl"), "-s", "-o", "/dev/null", "--max-time", "300", "-w", _CURL_FMT]
    if range_value:
        cmd += ["-H", f"Range: {range_value}"]
    cmd.append(server.url + target)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=330, check=False)
    fields = out.stdout.split()
    if out.returncode != 0 or len(fields) != 3:
        raise BenchError(f"curl failed ({out.returncode}): {out.stdout} {out.stderr}")
    code, size, seconds = int(fields[0]), int(fields[1]), float(fields[2])
    if (code, size) != expect:
        raise BenchError(f"curl {range_value}: got {code} with {size} bytes, want {expect}")
    return seconds, group_cpu(server) - cpu0


def wrk_rps(server: Server, target: str, seconds: int, workdir: Path,
            byte_range: tuple[int, int] = WRK_RANGE) -> dict[str, Any]:
    """Requests per second for one range (4 KiB unless told) at concurrency 16."""
    first, last = byte_range
    script = workdir / f"range-{first}-{last}.lua"
    script.write_text(f'wrk.headers["Range"] = "bytes={first}-{last}"\n')
    cmd = [need("wrk"), "-t1", "-c16", f"-d{seconds}s", "--timeout", "10s",
           "-s", str(script), server.url + target]
    cpu0 = group_cpu(server)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                         check=False)
    cpu = group_cpu(server) - cpu0
    if out.returncode != 0:
        raise BenchError(f"wrk failed: {out.stdout} {out.stderr}")
    count = re.search(r"(\d+) requests in", out.stdout)
    if count is None or int(count.group(1)) == 0:
        raise BenchError(f"no requests completed under wrk: {out.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if match is None:
        raise BenchError(f"no Requests/sec in wrk output: {out.stdout}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    errors = re.search(r"Socket errors:.*", out.stdout)
    return {"rps": float(match.group(1)), "non_2xx": int(bad.group(1)) if bad else 0,
            "cpu_us": cpu / int(count.group(1)) * 1e6,
            "socket_errors": errors.group(0) if errors else ""}


APPS = ("rangewsgi", "rangewsgi-read", "bare", "flask", "werkzeug", "whitenoise")
RANGE_1 = "bytes=1- (206)"
WHOLE = "whole file (200)"
PASS = "whole file (200, pass-through)"


def run(workdir: Path, *, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    missing = [tool for tool in ("nginx", "curl", "wrk") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI") == "true":
            raise BenchError(f"not installed: {', '.join(missing)} (apt-get install them)")
        log(f"loopback skipped, not installed: {', '.join(missing)}")
        return {"skipped": f"not installed: {', '.join(missing)}"}
    size = 16 * MiB if quick else GiB
    runs = 3 if quick else 11
    wrk_seconds, wrk_rounds = (1, 1) if quick else (3, 5)
    path = workdir / "big.bin"
    make_data_file(path, size, seed=2)
    logdir = workdir / "logs"
    logdir.mkdir(exist_ok=True)
    target = "/" + path.name
    results: dict[str, Any] = {"size": size, "runs": runs, "wrk_seconds": wrk_seconds,
                               "wrk_rounds": wrk_rounds, "workers": WORKERS,
                               "threads": THREADS, "transfers": [], "wrk": [], "verify": {}}
    log(f"loopback: {size // MiB} MiB file, {runs} interleaved curl rounds, "
        f"wrk {wrk_rounds} x {wrk_seconds} s")
    with ExitStack() as stack:
        # Every server runs at once so that each round measures them all side by side.
        servers = {"nginx": stack.enter_context(nginx(path, logdir))}
        for worker in ("sync", "gthread"):
            for app in APPS:
                servers[f"gunicorn {worker} {app}"] = stack.enter_context(
                    gunicorn(app, worker, path, logdir))
        for name, server in servers.items():
            if not name.endswith(" bare"):
                ours = "rangewsgi" in name
                results["verify"][name] = verify_server(
                    server, path, strict=ours, full_hash=name.endswith("rangewsgi"))
        plan: list[tuple[str, str, str | None, tuple[int, int]]] = [
            ("nginx", RANGE_1, "bytes=1-", (206, size - 1)),
            ("nginx", WHOLE, None, (200, size)),
        ]
        for worker in ("sync", "gthread"):
            prefix = f"gunicorn {worker} "
            plan += [
                (prefix + "rangewsgi", RANGE_1, "bytes=1-", (206, size - 1)),
                (prefix + "rangewsgi", PASS, None, (200, size)),
                (prefix + "bare", WHOLE, None, (200, size)),
                (prefix + "flask", RANGE_1, "bytes=1-", (206, size - 1)),
                (prefix + "whitenoise", RANGE_1, "bytes=1-", (206, size - 1)),
            ]
        times: dict[tuple[str, str], list[tuple[float, float]]] = {
            (n, lab): [] for n, lab, _, _ in plan}
        for round_no in range(runs + 1):  # round 0 warms up every server and the page cache
            for name, label, rng, expect in plan:
                measured = curl_once(servers[name], target, rng, expect)
                if round_no:
                    times[(name, label)].append(measured)
        for name, label, rng, _ in plan:
            wall = [t for t, _ in times[(name, label)]]
            cpu = [c for _, c in times[(name, label)]]
            results["transfers"].append({"server": name, "label": label, "range": rng,
                                         "median_s": median(wall), "times": wall,
                                         "cpu_s": median(cpu), "cpu_times": cpu})
            log(f"  {name:28} {label:32} {median(wall):8.3f} s  server CPU "
                f"{median(cpu):6.3f} s")
        contenders = ["nginx"] + [f"gunicorn {w} {a}" for w in ("sync", "gthread")
                                  for a in ("rangewsgi", "rangewsgi-read", "werkzeug",
                                            "whitenoise")]
        rounds: dict[str, list[dict[str, Any]]] = {n: [] for n in contenders}
        for _ in range(wrk_rounds):
            for name in contenders:
                rounds[name].append(wrk_rps(servers[name], target, wrk_seconds, workdir))
        for name in contenders:
            rows = rounds[name]
            non_2xx = sum(r["non_2xx"] for r in rows)
            if "rangewsgi" in name and non_2xx:
                raise BenchError(f"{name}: {non_2xx} non-2xx responses under wrk")
            rps = median([r["rps"] for r in rows])
            results["wrk"].append({"server": name, "rps": rps,
                                   "cpu_us": median([r["cpu_us"] for r in rows]),
                                   "rounds": [r["rps"] for r in rows], "non_2xx": non_2xx,
                                   "socket_errors": "; ".join(
                                       sorted({r["socket_errors"] for r in rows} - {""}))})
            log(f"  {name:28} wrk 4 KiB range, c16      {rps:8.0f} req/s, server CPU "
                f"{results['wrk'][-1]['cpu_us']:.0f} µs/request")
        results["sweep"] = range_size_sweep(servers, target, workdir, quick, log)
    return results


SWEEP_SIZES = (4 * KiB, 64 * KiB, 256 * KiB, MiB)


def range_size_sweep(servers: dict[str, Server], target: str, workdir: Path, quick: bool,
                     log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Single ranges of growing size: sendfile of a bounded file against reading in Python.

    ``rangewsgi`` hands single ranges to gunicorn's sendfile; ``rangewsgi-read`` (the option
    ``use_file_wrapper=False``) reads them itself. Where one overtakes the other is the point
    of this sweep.
    """
    sizes = SWEEP_SIZES[::3] if quick else SWEEP_SIZES
    seconds, rounds = (1, 1) if quick else (2, 5)
    names = ["gunicorn sync rangewsgi", "gunicorn sync rangewsgi-read"]
    rows = []
    for size in sizes:
        byte_range = (WRK_RANGE[0], WRK_RANGE[0] + size - 1)
        samples: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for _ in range(rounds):
            for name in names:
                samples[name].append(wrk_rps(servers[name], target, seconds, workdir,
                                             byte_range))
        for name in names:
            if any(r["non_2xx"] for r in samples[name]):
                raise BenchError(f"{name}: non-2xx responses under wrk")
            row = {"server": name, "size": size,
                   "rps": median([r["rps"] for r in samples[name]]),
                   "cpu_us": median([r["cpu_us"] for r in samples[name]])}
            rows.append(row)
            log(f"  {name:30} {size // KiB:5} KiB range  {row['rps']:7.0f} req/s  "
                f"server CPU {row['cpu_us']:.0f} µs/request")
    return rows


def transfer_time(results: dict[str, Any], server: str, label: str,
                  key: str = "median_s") -> float:
    for row in results["transfers"]:
        if row["server"] == server and row["label"] == label:
            return float(row[key])
    raise KeyError((server, label))


def wrk_value(results: dict[str, Any], server: str, key: str = "rps") -> float:
    for row in results["wrk"]:
        if row["server"] == server:
            return float(row[key])
    raise KeyError(server)
