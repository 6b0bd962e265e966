"""benchmarks/passthrough.py: a quick run reports every stack, and a wrong answer fails it."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import rangewsgi
import rangewsgi.asgi

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "passthrough.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The benchmark as a module of the ``benchmarks`` package."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.passthrough")


def test_quick_run_reports_every_stack_and_case(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert {(r["interface"], r["body"], r["validators"], r["method"]) for r in rows} == {
        (i, b, v, m) for i in ("WSGI", "ASGI") for b in ("list", "file")
        for v in (True, False) for m in ("GET", "HEAD")}
    for row in rows:
        assert "accept-ranges" in row["added"].split(", ")
        assert all(row[f"{stack}_us"] > 0 for stack in ("bare", "minimal", "rangewsgi"))
    table = [line for line in proc.stdout.splitlines() if line.startswith(("| WSGI", "| ASGI"))]
    assert len(table) == 16 + 4  # the rows, then the four targets
    assert "Targets (reported, never enforced)" in proc.stdout


class BodyChanger:
    """A WSGI middleware that answers with other bytes than the app's (same length)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], **options: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any],
                 ) -> Iterable[bytes]:
        body = b"".join(self.app(environ, start_response))
        return [bytes(len(body))]


class FieldDropper:
    """An ASGI middleware that drops the app's Content-Type."""

    def __init__(self, app: Any, **options: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def dropping(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message["headers"] if n != b"content-type"]
                message = {**message, "headers": [*kept, (b"accept-ranges", b"bytes")]}
            await send(message)

        await self.app(scope, receive, dropping)


@pytest.fixture
def path(bench: ModuleType, tmp_path: Path) -> Path:
    """The benchmark's data file."""
    made = tmp_path / "file.bin"
    bench.make_data_file(made, bench.SIZE)
    return made


def test_wrong_bytes_from_the_wsgi_middleware_are_refused(
        bench: ModuleType, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(rangewsgi, "RangeMiddleware", BodyChanger)
    sink = bench.Sink()
    with pytest.raises(bench.BenchError, match=r"WSGI rangewsgi, .*not the app's body"):
        bench.wsgi_rows(path, sink)
    sink.close()


def test_a_changed_field_from_the_asgi_middleware_is_refused(
        bench: ModuleType, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(rangewsgi.asgi, "RangeMiddleware", FieldDropper)
    loop = asyncio.new_event_loop()
    with pytest.raises(bench.BenchError, match=r"ASGI rangewsgi, .*content-type"):
        bench.asgi_rows(path, loop)
    loop.close()


@pytest.mark.parametrize(("stack", "method", "change", "error"), [
    ("rangewsgi", "GET", lambda h, b: (h, b[:-1]), "not the app's body"),
    ("rangewsgi", "GET", lambda h, b: ([x for x in h if x[0] != "accept-ranges"], b),
     "expected"),
    ("rangewsgi", "GET", lambda h, b: ([*h, ("etag", '"made"')], b), "added"),
    ("minimal", "GET", lambda h, b: ([*h, ("accept-ranges", "bytes")], b), "added"),
    ("bare", "HEAD", lambda h, b: ([*h, ("x-floor", "1")], b), "added"),
])
def test_check_refuses(bench: ModuleType, stack: str, method: str, change: Any, error: str,
                       path: Path) -> None:
    data = path.read_bytes()
    fields = bench.app_fields(path, True)  # the app gives ETag: none may be generated
    own = {"bare": [], "minimal": [("x-floor", "1")],
           "rangewsgi": [("accept-ranges", "bytes")]}[stack]
    sc = bench.Scenario("WSGI", "list", True, method)
    assert bench.check(stack, sc, bench.Reply(200, [*fields, *own], data), fields, data)
    headers, body = change([*fields, *own], data)
    with pytest.raises(bench.BenchError, match=error):
        bench.check(stack, sc, bench.Reply(200, headers, body), fields, data)


def test_check_accepts_a_head_without_its_body(bench: ModuleType, path: Path) -> None:
    fields = bench.app_fields(path, False)
    sc = bench.Scenario("ASGI", "file", False, "HEAD")
    generated = [("etag", '"1-2"'), ("last-modified", "Thu, 03 Dec 2026 00:00:00 GMT")]
    reply = bench.Reply(200, [*fields, ("accept-ranges", "bytes"), *generated], b"")
    assert bench.check("rangewsgi", sc, reply, fields, path.read_bytes()) == (
        "accept-ranges, etag, last-modified")
