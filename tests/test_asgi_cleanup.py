"""What each framework does after its response still happens when the middleware ends the
response early, on real servers, and nothing is left behind after many such answers.

The answers the middleware completes before the app has sent its whole body (a range, several
ranges, a ``416``, a ``HEAD``, a ``304``) are each asked 200 times of a streamed route of every
framework in ``asgiapps`` (Starlette and FastAPI ``StreamingResponse`` with a background task
that deletes a temporary file, and a FastAPI ``yield`` dependency; Quart's ``after_request``,
``teardown_request`` and the stream's ``finally``; Litestar's ``after_response`` hook and
background task; Django's ``request_finished``). Afterwards the server process must come back
to where it started: the same open descriptors (``/proc/PID/fd``), no more pending tasks, no
temporary file left and no after-response work pending, without a garbage collection (the
servers run with the collector off).

Servers announce ASGI spec 2.3 or below (uvicorn 2.3, hypercorn 2.1, Granian 2.3, daphne
none); a server of spec 2.4 is shown by the ``x-test-spec-version`` field, which makes the
recorder in front of the applications announce 2.4, as such a server would (Starlette stops
listening for ``http.disconnect`` at 2.4 and streams until ``send`` raises).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_launch import SERVERS, Served, launch, workdir_fixture
from server_configs.checks import check_single
from server_configs.launch import write_data
from support import RawClient, RawResponse, free_port, parse_multipart

pytestmark = pytest.mark.network

SIZE = 200_003  # some 200 messages of 1 KiB on the task routes
ETAG = '"stream-v1"'  # asgiapps.ETAG_STREAM
SPEC_FIELD = "x-test-spec-version"  # asgiapps.SPEC_FIELD
TASK_ROUTES = ["/starlette/task", "/fastapi/task", "/quart/task", "/litestar/task",
               "/django/task"]
CLEAN = {"open_files": [], "tasks": [], "unfinished": 0, "pending": {}, "temp_files": []}
REPEAT = 200
# The servers the descriptor and task counts run on (the others get the shorter round).
COUNTED = ("uvicorn-h11", "hypercorn")

Check = Callable[[RawResponse, bytes], None]


def _range(resp: RawResponse, data: bytes) -> None:
    check_single(resp, data, 10, 19)


def _ranges(resp: RawResponse, data: bytes) -> None:
    assert resp.status == 206, (resp.status, resp.headers)
    parts = parse_multipart(resp.body, resp.header("Content-Type") or "")
    assert [body for _, body in parts] == [data[0:1], data[5:10]]
    assert [fields["content-range"] for fields, _ in parts] == [
        f"bytes 0-0/{len(data)}", f"bytes 5-9/{len(data)}"]


def _unsatisfiable(resp: RawResponse, data: bytes) -> None:
    assert resp.status == 416, (resp.status, resp.headers)
    assert resp.header("Content-Range") == f"bytes */{len(data)}"


def _head(resp: RawResponse, data: bytes) -> None:
    assert resp.status == 200, (resp.status, resp.headers)
    assert resp.header("Content-Length") == str(len(data))
    assert resp.header("ETag") == ETAG and resp.body == b""


def _not_modified(resp: RawResponse, data: bytes) -> None:
    assert resp.status == 304, (resp.status, resp.headers)
    assert resp.header("ETag") == ETAG and resp.body == b""


def kinds(n: int) -> dict[str, tuple[str, dict[str, str], Check]]:
    """The answers the middleware completes early: (method, request fields, check)."""
    return {"206": ("GET", {"Range": "bytes=10-19"}, _range),
            "multipart 206": ("GET", {"Range": "bytes=0-0,5-9"}, _ranges),
            "416": ("GET", {"Range": f"bytes={n}-"}, _unsatisfiable),
            "HEAD": ("HEAD", {}, _head),
            "304": ("GET", {"If-None-Match": ETAG}, _not_modified)}


workdir = workdir_fixture("rangewsgi-asgi-cleanup-")


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest, workdir: Path) -> Iterator[Served]:
    name: str = request.param
    path, data = write_data(workdir, SIZE)
    big = workdir / "big.bin"
    big.touch()
    server = launch(name, free_port(), workdir, path, big)
    try:
        yield Served(server, name, data)
    finally:
        server.stop()


def get_json(port: int, path: str) -> Any:
    with RawClient(port, timeout=10) as client:
        return json.loads(client.request(path).body)


def poll(port: int, done: Callable[[dict[str, Any]], bool], report: str,
         timeout: float = 10.0) -> dict[str, Any]:
    """Ask ``report`` until ``done`` says yes (bounded); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = get_json(port, report)
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def added(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """What ``/_state`` shows now that it did not show ``before``: files and tasks, Django
    requests unfinished, after-response work pending, temporary files."""
    new: dict[str, Any] = {}
    for key in ("open_files", "tasks", "temp_files"):
        extra = [item for item in now[key] if item not in before[key]]
        if extra:
            new[key] = extra
    if now["unfinished"] > before["unfinished"]:
        new["unfinished"] = now["unfinished"] - before["unfinished"]
    pending = {name: count - before["pending"].get(name, 0)
               for name, count in now["pending"].items()
               if count > before["pending"].get(name, 0)}
    if pending:
        new["pending"] = pending
    return new


def left_behind(port: int, before: dict[str, Any]) -> dict[str, Any]:
    """Poll (bounded) until nothing is left that was not there ``before``; what is left."""
    return added(before, poll(port, lambda s: not added(before, s), "/_state"))


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def counts(port: int) -> tuple[int, int]:
    """Open descriptors of the process running the applications, and its pending tasks."""
    proc = get_json(port, "/_proc")
    return descriptors(proc["pid"]), proc["tasks"]


def wait_for_baseline(port: int, baseline: tuple[int, int],
                      timeout: float = 10.0) -> tuple[int, int]:
    """Poll until descriptors and tasks are back to ``baseline`` or below (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        now = counts(port)
        if (now[0] <= baseline[0] and now[1] <= baseline[1]) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def ask(port: int, route: str, data: bytes, times: int, spec: str | None) -> None:
    """Every kind of early answer, ``times`` each, on one keep-alive connection."""
    extra = {SPEC_FIELD: spec} if spec else {}
    with RawClient(port) as client:
        for kind, (method, headers, check) in kinds(len(data)).items():
            for _ in range(times):
                resp = client.request(route, {**headers, **extra}, method)
                try:
                    check(resp, data)
                except AssertionError as exc:
                    raise AssertionError(f"{route} {kind}: {exc}") from exc
        client.assert_idle()


@pytest.mark.parametrize("route", TASK_ROUTES)
@pytest.mark.parametrize("spec", [None, "2.4"])
def test_after_response_work_runs(served: Served, route: str, spec: str | None) -> None:
    # Five of each early answer: the background task ran (its temporary file is gone), the
    # dependency's cleanup, the hooks and Django's request_finished ran, and no file or task
    # is left inside the middleware.
    port = served.server.port
    before = poll(port, lambda s: s == CLEAN, "/_state")  # what earlier tests left is theirs
    ask(port, route, served.data, 5, spec)
    assert left_behind(port, before) == {}


@pytest.mark.parametrize("spec", [None, "2.4"])
def test_nothing_grows_after_many_answers(served: Served, spec: str | None) -> None:
    # 200 of each early answer on every task route: the server process comes back to the
    # descriptors and pending tasks it had before, with nothing pending or left over.
    if served.name not in COUNTED:
        pytest.skip(f"counted on {', '.join(COUNTED)}; {served.name} has the shorter round")
    port, data = served.server.port, served.data
    for route in TASK_ROUTES:  # every application built and every module imported first
        ask(port, route, data, 1, spec)
    before = poll(port, lambda s: s == CLEAN, "/_state")
    baseline = counts(port)
    for route in TASK_ROUTES:
        ask(port, route, data, REPEAT, spec)
    assert left_behind(port, before) == {}
    after = wait_for_baseline(port, baseline)
    assert after[0] <= baseline[0] and after[1] <= baseline[1], (baseline, after)
