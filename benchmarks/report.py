"""Turn the measurements into Markdown tables, headline ratios and PNG plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import MiB

BEGIN = "<!-- BEGIN GENERATED: benchmarks/run.py rewrites this part -->"
END = "<!-- END GENERATED -->"


def _size(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):g} GiB"
    return f"{n / MiB:g} MiB"


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def headlines(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The ratios the project quotes, each with its target (None when it has none)."""
    rows: list[dict[str, Any]] = []

    def add(label: str, value: Callable[[], float], unit: str,
            target: float | None = None) -> None:
        try:
            v = value()
        except (KeyError, ZeroDivisionError):
            return
        rows.append({"label": label, "value": v, "unit": unit, "target": target,
                     "met": None if target is None else v <= target})

    ip = results.get("inprocess")
    if ip is not None:
        from benchmarks.inprocess import lookup
        single = "single range (64 KiB)"
        add("In process, single range, file body: rangewsgi / Werkzeug send_file",
            lambda: lookup(ip, "file", "rangewsgi", single)
            / lookup(ip, "file", "Werkzeug send_file", single), "x", 0.5)
        add("In process, single range, list body: rangewsgi / Werkzeug make_conditional",
            lambda: lookup(ip, "list", "rangewsgi", single)
            / lookup(ip, "list", "Werkzeug make_conditional", single), "x", 0.5)
        # The list body isolates the middleware; the file body adds open() and sendfile,
        # whose kernel cost varies by more than the middleware's from round to round.
        for body, target in (("list", 5.0), ("file", None)):
            add(f"In process, pass-through (no Range), {body} body: rangewsgi - bare app",
                lambda b=body: lookup(ip, b, "rangewsgi", "no Range")  # type: ignore[misc]
                - lookup(ip, b, "bare app", "no Range"), "µs", target)
    lb = results.get("loopback")
    if lb is not None and "skipped" not in lb:
        from benchmarks.loopback import PASS, RANGE_1, WHOLE, transfer_time, wrk_value
        big = _size(lb["size"])
        for worker in ("sync", "gthread"):
            ours = f"gunicorn {worker} rangewsgi"
            pairs: list[tuple[str, str, str, float | None]] = [
                ("nginx", RANGE_1, "nginx's 206", 1.1),
                (ours, PASS, "the same file as a 200, same server", 1.3),
                (f"gunicorn {worker} bare", WHOLE, "the bare app's 200 (no middleware)", 1.3),
                (f"gunicorn {worker} flask", RANGE_1, "Flask send_file's 206", None),
            ]
            for other, label, text, target in pairs:
                add(f"{big} `bytes=1-`, gunicorn {worker}, wall time: rangewsgi / {text}",
                    lambda o=other, lab=label, n=ours:  # type: ignore[misc]
                    transfer_time(lb, n, RANGE_1) / transfer_time(lb, o, lab), "x", target)
            # Server CPU is counted in 10 ms ticks: a sendfile transfer costs only a few, so
            # only the comparison with a server that copies through Python is quoted.
            add(f"{big} `bytes=1-`, gunicorn {worker}, server CPU: rangewsgi / Flask send_file",
                lambda w=worker, n=ours:  # type: ignore[misc]
                transfer_time(lb, n, RANGE_1, "cpu_s")
                / transfer_time(lb, f"gunicorn {w} flask", RANGE_1, "cpu_s"), "x")
            for other in ("werkzeug", "whitenoise"):
                name = "Werkzeug" if other == "werkzeug" else "WhiteNoise"
                add(f"wrk 4 KiB ranges c16, gunicorn {worker}, req/s: rangewsgi / {name} "
                    "(higher is better)",
                    lambda o=other, w=worker, n=ours:  # type: ignore[misc]
                    wrk_value(lb, n) / wrk_value(lb, f"gunicorn {w} {o}"), "x")
                add(f"wrk 4 KiB ranges c16, gunicorn {worker}, server CPU per request: "
                    f"rangewsgi / {name}",
                    lambda o=other, w=worker, n=ours:  # type: ignore[misc]
                    wrk_value(lb, n, "cpu_us") / wrk_value(lb, f"gunicorn {w} {o}", "cpu_us"),
                    "x")
    sc = results.get("scaling")
    if sc is not None:
        gen = [r for r in sc["size"]["rows"] if r["kind"] == "generator"]
        if gen:
            last = gen[-1]
            add(f"Generator body, `bytes=-100` of {_size(last['size'])}: skip speed",
                lambda: float(last["gb_per_s"]), "GB/s")
        ranged = [r for r in sc["rss"]["rows"] if r["kind"] in ("file", "generator")]
        if ranged:
            add("Peak RSS growth during one request, 1 MiB to "
                f"{_size(max(r['size'] for r in ranged))}, file and generator bodies (max)",
                lambda: float(max(r["peak_kib"] - r["rss_before_kib"] for r in ranged)),
                "KiB")
    return rows


def markdown(results: dict[str, Any], plots: list[str]) -> str:
    out: list[str] = []
    w = out.append
    mode = "quick (`--quick`)" if results["quick"] else "full"
    w(f"Run: {results['started']} UTC, {mode} mode, {results['elapsed_s']:.0f} s, "
      f"command `{results['command']}`.\n")
    w("### Machine and versions\n")
    w("| | |")
    w("|---|---|")
    for key, value in results["machine"].items():
        w(f"| {key} | {value} |")
    w("")
    if results.get("load"):
        w("Load average (1, 5, 15 min) before and after each section: " + "; ".join(
            f"{name} {before} -> {after}" for name, (before, after) in results["load"].items())
          + ".\n")
    heads = headlines(results)
    if heads:
        w("### Headline figures\n")
        w("| Measure | Value | Target | Met |")
        w("|---|---:|---:|:---:|")
        for h in heads:
            target = "" if h["target"] is None else f"<= {h['target']:g} {h['unit']}"
            met = "" if h["met"] is None else ("yes" if h["met"] else "**no**")
            w(f"| {h['label']} | {h['value']:.2f} {h['unit']} | {target} | {met} |")
        w("")
    if "inprocess" in results:
        _inprocess(results["inprocess"], w)
    if "loopback" in results:
        if "skipped" in results["loopback"]:
            w(f"### Loopback\n\nSkipped: {results['loopback']['skipped']}.\n")
        else:
            _loopback(results["loopback"], w)
    if "scaling" in results:
        _scaling(results["scaling"], w)
    if plots:
        w("### Plots\n")
        for name in plots:
            w(f"![{name}]({name})\n")
    return "\n".join(out).rstrip() + "\n"


def _inprocess(ip: dict[str, Any], w: Callable[[str], None]) -> None:
    names = [s["name"] for s in ip["scenarios"]]
    w(f"### In process: µs per request, {_size(ip['size'])} body (median of {ip['rounds']} "
      "interleaved rounds, CPU time of the serving thread)\n")
    w("Request: " + "; ".join(f"{s['name']}: `{s['range'] or '(none)'}`"
                              for s in ip["scenarios"]) + ". Cells: median µs (status served).\n")
    for body in ("file", "list"):
        rows = [c for c in ip["cases"] if c["body"] == body]
        impls = list(dict.fromkeys(c["impl"] for c in rows))
        w(f"**{body} body**\n")
        w("| Application | " + " | ".join(names) + " |")
        w("|---|" + "---:|" * len(names))
        for impl in impls:
            cells = []
            for name in names:
                c = next(c for c in rows if c["impl"] == impl and c["scenario"] == name)
                cells.append(f"{_us(c['median_us'])} ({c['outcome']})")
            w(f"| {impl} | " + " | ".join(cells) + " |")
        w("")


def _loopback(lb: dict[str, Any], w: Callable[[str], None]) -> None:
    w(f"### Loopback: {_size(lb['size'])} file, curl to /dev/null (median of {lb['runs']} "
      "interleaved rounds after a warm-up round; all servers up at once)\n")
    w(f"gunicorn: {lb['workers']} workers (gthread: {lb['threads']} threads each); nginx: "
      f"{lb['workers']} worker processes, sendfile on.\n")
    w("| Server | Request | Median s (wall) | Median server CPU s | Runs, wall s |")
    w("|---|---|---:|---:|---|")
    for row in lb["transfers"]:
        runs = ", ".join(f"{t:.2f}" for t in row["times"])
        w(f"| {row['server']} | {row['label']} | {row['median_s']:.3f} | {row['cpu_s']:.2f} | "
          f"{runs} |")
    w("")
    w(f"### Loopback: requests per second, 4 KiB range, `wrk -t1 -c16 -d{lb['wrk_seconds']}s`"
      f" (median of {lb['wrk_rounds']} interleaved rounds)\n")
    w("| Server | req/s | Server CPU µs per request | Rounds, req/s | non-2xx | socket errors |")
    w("|---|---:|---:|---|---:|---|")
    for row in lb["wrk"]:
        rounds = ", ".join(f"{r:,.0f}" for r in row["rounds"])
        w(f"| {row['server']} | {row['rps']:,.0f} | {row['cpu_us']:,.0f} | {rounds} | "
          f"{row['non_2xx']} | {row['socket_errors'] or 'none'} |")
    w("")
    if lb.get("sweep"):
        w("### Loopback: single range size, sendfile against reading (gunicorn sync, "
          "wrk -c16)\n")
        w("`rangewsgi` hands a single range to gunicorn's sendfile as a bounded file; "
          "`rangewsgi-read` is `RangeMiddleware(app, use_file_wrapper=False)`, which reads it.\n")
        w("| Range size | rangewsgi req/s | rangewsgi-read req/s | rangewsgi server CPU µs "
          "| rangewsgi-read server CPU µs |")
        w("|---:|---:|---:|---:|---:|")
        for size in dict.fromkeys(r["size"] for r in lb["sweep"]):
            a, b = (next(r for r in lb["sweep"] if r["size"] == size and r["server"] == n)
                    for n in ("gunicorn sync rangewsgi", "gunicorn sync rangewsgi-read"))
            w(f"| {size // 1024} KiB | {a['rps']:,.0f} | {b['rps']:,.0f} | {a['cpu_us']:,.0f} | "
              f"{b['cpu_us']:,.0f} |")
        w("")
    bad = {k: v for k, v in lb["verify"].items() if v != "ok"}
    w("Bytes checked before timing (ranges compared with the file; `bytes=1-` of rangewsgi "
      "hashed in full): " + ("all ok." if not bad else str(bad)) + "\n")


def _scaling(sc: dict[str, Any], w: Callable[[str], None]) -> None:
    counts = sorted({r["ranges"] for r in sc["ranges"]["rows"]})
    w("### Scaling: µs per request against the number of ranges (1 MiB body, 1000-byte "
      "ranges)\n")
    w("| Body | " + " | ".join(str(c) for c in counts) + " |")
    w("|---|" + "---:|" * len(counts))
    for body in ("file", "list"):
        cells = [next(r for r in sc["ranges"]["rows"]
                      if r["body"] == body and r["ranges"] == c)["median_us"] for c in counts]
        w(f"| {body} | " + " | ".join(_us(v) for v in cells) + " |")
    w("")
    size = sc["size"]
    w(f"### Scaling: `{size['range']}` against body size (generator chunks of "
      f"{size['chunk'] // 1024} KiB)\n")
    w("| Body | Size | µs per request | GB/s of body passed over |")
    w("|---|---:|---:|---:|")
    for r in size["rows"]:
        # A file body is not passed over: the middleware seeks.
        speed = "(seek)" if r["kind"] == "file" else f"{r['gb_per_s']:.1f}"
        w(f"| {r['kind']} | {_size(r['size'])} | {_us(r['median_us'])} | {speed} |")
    w("")
    w("### Peak RSS of one request (fresh subprocess, body consumed by iteration, VmHWM)\n")
    w("| Body | Range | Size | RSS before (MiB) | Peak (MiB) | Growth (KiB) | Time (s) |")
    w("|---|---|---:|---:|---:|---:|---:|")
    for r in sc["rss"]["rows"]:
        growth = r["peak_kib"] - r["rss_before_kib"]
        w(f"| {r['kind']} | `{r['range'] or '(none)'}` | {_size(r['size'])} | "
          f"{r['rss_before_kib'] / 1024:.1f} | {r['peak_kib'] / 1024:.1f} | {growth} | "
          f"{r['seconds']:.2f} |")
    w("")


def plots(results: dict[str, Any], outdir: Path) -> list[str]:
    """Write the PNG plots; return their file names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(outdir / name, dpi=110)
        plt.close(fig)
        written.append(name)

    ip = results.get("inprocess")
    if ip is not None:
        names = [s["name"] for s in ip["scenarios"]]
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
        for ax, body in zip(axes, ("file", "list"), strict=True):
            rows = [c for c in ip["cases"] if c["body"] == body]
            impls = list(dict.fromkeys(c["impl"] for c in rows))
            width = 0.8 / len(impls)
            for i, impl in enumerate(impls):
                values = [next(c["median_us"] for c in rows
                               if c["impl"] == impl and c["scenario"] == n) for n in names]
                ax.bar([x + i * width for x in range(len(names))], values, width, label=impl)
            ax.set_xticks([x + 0.4 - width / 2 for x in range(len(names))], names, fontsize=8)
            ax.set_yscale("log")
            ax.set_ylabel("µs per request (median)")
            ax.set_title(f"In process, {_size(ip['size'])} {body} body")
            ax.legend(fontsize=7)
        save(fig, "bench-inprocess.png")
    lb = results.get("loopback")
    if lb is not None and "skipped" not in lb:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))

        def colour(server: str) -> str:
            return "tab:orange" if "rangewsgi" in server else "tab:blue"

        labels = [f"{r['server']}\n{r['label']}" for r in lb["transfers"]]
        ax1.barh(range(len(labels)), [r["median_s"] for r in lb["transfers"]],
                 color=[colour(r["server"]) for r in lb["transfers"]])
        ax1.set_yticks(range(len(labels)), labels, fontsize=7)
        ax1.invert_yaxis()
        ax1.set_xlabel("seconds (median, lower is better)")
        ax1.set_title(f"{_size(lb['size'])} over loopback (curl)")
        rows = [r for r in lb["wrk"] if r["server"] != "nginx"]
        nginx_rps = [r["rps"] for r in lb["wrk"] if r["server"] == "nginx"]
        ax2.barh(range(len(rows)), [r["rps"] for r in rows],
                 color=[colour(r["server"]) for r in rows])
        ax2.set_yticks(range(len(rows)), [r["server"] for r in rows], fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xlabel("requests per second (median, higher is better)")
        extra = f" (nginx: {nginx_rps[0]:,.0f})" if nginx_rps else ""
        ax2.set_title(f"4 KiB ranges, wrk c16{extra}")
        save(fig, "bench-loopback.png")
    sc = results.get("scaling")
    if sc is not None:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        for body in ("file", "list"):
            rows = [r for r in sc["ranges"]["rows"] if r["body"] == body]
            axes[0].plot([r["ranges"] for r in rows], [r["median_us"] for r in rows],
                         marker="o", label=f"{body} body")
        axes[0].set_xscale("log")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("number of ranges")
        axes[0].set_ylabel("µs per request")
        axes[0].set_title("Cost against number of ranges (1 MiB)")
        axes[0].legend(fontsize=8)
        for kind in dict.fromkeys(r["kind"] for r in sc["size"]["rows"]):
            rows = [r for r in sc["size"]["rows"] if r["kind"] == kind]
            axes[1].plot([r["size"] / MiB for r in rows], [r["median_us"] for r in rows],
                         marker="o", label=kind)
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("body size (MiB)")
        axes[1].set_ylabel("µs per request")
        axes[1].set_title(f"`{sc['size']['range']}` against body size")
        axes[1].legend(fontsize=8)
        plans = dict.fromkeys((r["kind"], r["range"]) for r in sc["rss"]["rows"])
        for kind, rng in plans:
            rows = [r for r in sc["rss"]["rows"] if (r["kind"], r["range"]) == (kind, rng)]
            axes[2].plot([r["size"] / MiB for r in rows], [r["peak_kib"] / 1024 for r in rows],
                         marker="o", label=f"{kind} {rng or '(no Range)'}")
        axes[2].set_xscale("log")
        axes[2].set_ylim(0, max(r["peak_kib"] for r in sc["rss"]["rows"]) / 1024 * 1.6)
        axes[2].set_xlabel("body size (MiB)")
        axes[2].set_ylabel("peak RSS (MiB)")
        axes[2].set_title("Peak RSS of one request")
        axes[2].legend(fontsize=7)
        save(fig, "bench-scaling.png")
    return written


TEMPLATE = f"""# Benchmarks

Produced by `python benchmarks/run.py` (full run) on the machine listed below.

{BEGIN}
{END}
"""


def write_markdown(path: Path, generated: str) -> None:
    """Replace the generated part of ``path``, keeping the hand-written text around it."""
    text = path.read_text() if path.exists() else TEMPLATE
    if BEGIN not in text or END not in text:
        text = TEMPLATE
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{generated}{END}{tail}")
