"""The README's framework recipes, verified: Flask, Django, Bottle, Pyramid, Falcon.

Each framework application is built by ``serverapps`` exactly as its recipe says and is
exercised twice: in-process through ``werkzeug.test.Client`` with ``wsgiref.validate`` checking
PEP 3333 on both sides, and over a real gunicorn (gthread) under strace, where file bodies
must still reach the socket through sendfile from the range's offset.

Routes where the framework answers Range itself (Flask ``send_file(conditional=True)``, Bottle
``static_file``, Pyramid's conditional ``FileResponse``) must pass through untouched: the answer
with the middleware equals the answer without it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serverapps
from server_configs.checks import (
    call,
    cases,
    check_multi,
    check_single,
    sendfile_calls,
    with_etag,
)
from server_configs.launch import (
    FILE_ENV,
    data_file_in_env,
    gunicorn_cmd,
    require,
    strace_cmd,
)
from support import RawClient, RawResponse, Server, free_port, start_server

SIZE = 200_003
CASES = cases(SIZE)

# (framework, route) answered 200 by the framework: the middleware makes the ranges.
RANGED = [
    ("flask", "/response-file"), ("flask", "/response-gen"), ("flask", "/send-file"),
    ("django", "/file-response"), ("django", "/static"), ("django", "/file-response-bare"),
    ("bottle", "/plain-file"),
    ("pyramid", "/file-response-plain"),
    ("falcon", "/stream"),
]
# Bodies that are files: zero-copy must survive on gunicorn.
FILE_ROUTES = [r for r in RANGED if r != ("flask", "/response-gen")]
# (framework, route) that answer Range themselves: passed through untouched.
SELF_RANGED = [("flask", "/send-file-conditional"), ("bottle", "/static"),
               ("pyramid", "/file-response")]
PASS_RANGES = ["bytes=100-199", "bytes=-777", "bytes=0-9,-5", f"bytes={SIZE}-", "bytes=-0",
               "bytes=5-4"]


def ids(route: tuple[str, str]) -> str:
    return f"{route[0]}{route[1]}"


@pytest.fixture(scope="module")
def data_file() -> Iterator[tuple[Path, bytes]]:
    with data_file_in_env("rangewsgi-frameworks-", SIZE) as made:
        yield made


@pytest.fixture(scope="module")
def apps(data_file: tuple[Path, bytes]) -> dict[str, tuple[Any, Any]]:
    """framework -> (application wired by its recipe, the same application bare)."""
    return {name: (factory(True), factory(False))
            for name, factory in serverapps.FACTORIES.items()}


def validator_of(resp: RawResponse) -> str:
    """The If-Range value a client would send back: the ETag, or else Last-Modified."""
    value = resp.header("ETag") or resp.header("Last-Modified")
    assert value is not None
    return value


@pytest.mark.parametrize("route", RANGED, ids=ids)
@pytest.mark.parametrize("case", list(CASES))
def test_recipe_in_process(apps: dict[str, tuple[Any, Any]], data_file: tuple[Path, bytes],
                           route: tuple[str, str], case: str) -> None:
    ranged, _bare = apps[route[0]]
    data = data_file[1]
    method, headers, check = CASES[case]
    tag = validator_of(call(ranged, route[1], "HEAD"))
    check(call(ranged, route[1], method, with_etag(headers, tag)), data)


@pytest.mark.parametrize("route", RANGED, ids=ids)
def test_bare_framework_ignores_range(apps: dict[str, tuple[Any, Any]],
                                      data_file: tuple[Path, bytes],
                                      route: tuple[str, str]) -> None:
    """Without the recipe these routes answer 200: the ranges above come from rangewsgi."""
    _ranged, bare = apps[route[0]]
    resp = call(bare, route[1], headers={"Range": "bytes=100-199"})
    assert resp.status == 200
    assert resp.body == data_file[1]


@pytest.mark.parametrize("route", SELF_RANGED, ids=ids)
@pytest.mark.parametrize("range_value", PASS_RANGES)
def test_self_ranged_passes_through(apps: dict[str, tuple[Any, Any]],
                                    route: tuple[str, str], range_value: str) -> None:
    ranged, bare = apps[route[0]]
    headers = {"Range": range_value}
    with_mw = call(ranged, route[1], headers=headers)
    without = call(bare, route[1], headers=headers)
    assert with_mw.status == without.status
    assert with_mw.body == without.body
    if without.status == 206:
        assert with_mw.headers == without.headers
    else:  # a 200 or a 416 the framework made: untouched except Accept-Ranges on a 200
        assert [h for h in with_mw.headers if h[0] != "Accept-Ranges"] == \
            [h for h in without.headers if h[0] != "Accept-Ranges"]


def test_self_ranged_single_range_is_right(apps: dict[str, tuple[Any, Any]],
                                           data_file: tuple[Path, bytes]) -> None:
    """The framework's own single-range answers carry the right bytes (so passing is safe)."""
    for name, route in SELF_RANGED:
        check_single(call(apps[name][0], route, headers={"Range": "bytes=100-199"}),
                     data_file[1], 100, 199)


# --- over gunicorn ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gunicorn(data_file: tuple[Path, bytes]) -> Iterator[tuple[Server, Path]]:
    require("strace")
    path, _data = data_file
    workdir = path.parent
    trace = workdir / "frameworks.strace"
    port = free_port()
    cmd = strace_cmd(trace, gunicorn_cmd(port, "gthread", "serverapps:frameworks"))
    server = start_server(cmd, port, env={FILE_ENV: str(path)}, cwd=workdir,
                          log_path=workdir / "gunicorn.log")
    try:
        yield server, trace
    finally:
        server.stop()


def wait_for_sendfile(trace: Path, offset: int, count: int) -> list[tuple[int, int, int]]:
    """The sendfile calls seen so far, once one starts at ``offset`` (bounded wait)."""
    deadline = time.monotonic() + 5
    while True:
        calls = sendfile_calls(trace.read_text())
        if any(c[0] == offset and c[1] == count for c in calls) or time.monotonic() > deadline:
            return calls
        time.sleep(0.05)


@pytest.mark.parametrize("route", RANGED, ids=ids)
def test_recipe_over_gunicorn(gunicorn: tuple[Server, Path], data_file: tuple[Path, bytes],
                              route: tuple[str, str]) -> None:
    server, trace = gunicorn
    data = data_file[1]
    url = f"/{route[0]}{route[1]}"
    # A distinct offset per route, so its sendfile call can be told apart in the trace.
    first = 1000 + 7919 * RANGED.index(route)
    last = first + 65_000
    with RawClient(server.port) as client:
        check_single(client.request(url, {"Range": f"bytes={first}-{last}"}), data, first, last)
        check_multi(client.request(url, {"Range": "bytes=0-0,-3"}), data,
                    [(0, 0), (SIZE - 3, SIZE - 1)])
        check_single(client.request(url, {"Range": "bytes=-1"}), data, SIZE - 1, SIZE - 1)
        client.assert_idle(0.1)
    if route in FILE_ROUTES:
        calls = wait_for_sendfile(trace, first, last - first + 1)
        assert (first, last - first + 1) in [(c[0], c[1]) for c in calls], calls
    else:  # a generator: written by the worker, never sendfile'd
        assert all(c[0] != first for c in sendfile_calls(trace.read_text()))


@pytest.mark.parametrize("route", SELF_RANGED, ids=ids)
def test_self_ranged_over_gunicorn(gunicorn: tuple[Server, Path],
                                   data_file: tuple[Path, bytes],
                                   route: tuple[str, str]) -> None:
    """The framework's own 206 arrives intact over a real server."""
    server, _trace = gunicorn
    first = 4096 + 7919 * SELF_RANGED.index(route)
    last = first + 99_999
    with RawClient(server.port) as client:
        check_single(client.request(f"/{route[0]}{route[1]}",
                                    {"Range": f"bytes={first}-{last}"}),
                     data_file[1], first, last)
        client.assert_idle(0.1)


# --- revalidation and safe resumption (RFC 9110 13.2.2) ---------------------------------------

# Routes that answer 200 only; with the middleware they answer 304, 412 and If-Range too.
REVALIDATED = [("flask", "/send-file"), ("django", "/file-response-bare"),
               ("django", "/file-response"), ("bottle", "/plain-file")]
# Routes whose framework answers conditional requests itself: untouched.
SELF_CONDITIONAL = [("flask", "/send-file-conditional"), ("pyramid", "/file-response")]


@pytest.mark.parametrize("route", REVALIDATED, ids=ids)
def test_revalidation_and_resume_in_process(apps: dict[str, tuple[Any, Any]],
                                            data_file: tuple[Path, bytes],
                                            route: tuple[str, str]) -> None:
    ranged, bare = apps[route[0]]
    data = data_file[1]
    first = call(ranged, route[1])
    assert first.status == 200 and first.body == data
    etag, modified = first.header("ETag"), first.header("Last-Modified")
    assert etag is not None and etag.startswith('"')  # strong: If-Range can hold
    # Revalidation: 304, no content (15.4.5).
    again = call(ranged, route[1], headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b"" and again.header("ETag") == etag
    if modified is not None:
        assert call(ranged, route[1], headers={"If-Modified-Since": modified}).status == 304
    # Safe resumption: If-Range with the validator gets the rest; a stale one the whole.
    rest = call(ranged, route[1], headers={"Range": "bytes=150000-", "If-Range": etag})
    check_single(rest, data, 150_000, SIZE - 1)
    stale = call(ranged, route[1], headers={"Range": "bytes=150000-", "If-Range": '"old"'})
    assert stale.status == 200 and stale.body == data
    assert call(ranged, route[1], headers={"If-Match": '"old"'}).status == 412
    # Without the middleware the same requests get the whole file again.
    assert call(bare, route[1], headers={"If-None-Match": etag}).status == 200


def test_django_file_response_gains_validators(apps: dict[str, tuple[Any, Any]]) -> None:
    ranged, bare = apps["django"]
    assert call(bare, "/file-response-bare").header("ETag") is None
    assert call(bare, "/file-response-bare").header("Last-Modified") is None
    got = call(ranged, "/file-response-bare")
    assert got.header("ETag") is not None and got.header("Last-Modified") is not None


@pytest.mark.parametrize("route", SELF_CONDITIONAL, ids=ids)
def test_self_conditional_passes_through(apps: dict[str, tuple[Any, Any]],
                                         route: tuple[str, str]) -> None:
    ranged, bare = apps[route[0]]
    etag = call(bare, route[1]).header("ETag")
    assert etag is not None
    # With Range too, Werkzeug answers 206 (it evaluates Range before If-None-Match): that is
    # the app's own answer, and it passes through as it is.
    for headers in ({"If-None-Match": etag}, {"If-None-Match": etag, "Range": "bytes=0-9"}):
        with_mw, without = call(ranged, route[1], headers=headers), call(bare, route[1],
                                                                         headers=headers)
        assert without.status in (304, 206)
        assert (with_mw.status, with_mw.headers, with_mw.body) == (
            without.status, without.headers, without.body)


@pytest.mark.parametrize("route", [("flask", "/send-file"), ("django", "/file-response-bare")],
                         ids=ids)
def test_revalidation_over_gunicorn(gunicorn: tuple[Server, Path],
                                    data_file: tuple[Path, bytes],
                                    route: tuple[str, str]) -> None:
    """The requests a browser or download manager sends, over a real server, logged."""
    server, _trace = gunicorn
    data = data_file[1]
    url = f"/{route[0]}{route[1]}"
    with RawClient(server.port) as client:
        first = client.request(url)
        assert first.status == 200 and first.body == data
        etag = first.header("ETag")
        assert etag is not None
        assert client.request(url, {"If-None-Match": etag}).status == 304
        check_single(client.request(url, {"Range": "bytes=100000-", "If-Range": etag}), data,
                     100_000, SIZE - 1)
        client.assert_idle(0.1)
    # gunicorn's access log (status, bytes, Range, request line; sendfile counts 0 bytes).
    seen = [line.split(" ", 1)[0] for line in server.log().splitlines()
            if line.endswith(f'"GET {url} HTTP/1.1"')]
    assert seen[-3:] == ["200", "304", "206"], server.log()[-2000:]
