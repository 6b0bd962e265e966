"""The ASGI RangeMiddleware under uvicorn, hypercorn, daphne and Granian, byte for byte.

Each server is started once per module on a free loopback port and serves ``asgiapps:app``
(a raw ASGI app, Starlette, FastAPI, Django, Quart and Litestar, each wrapped as its users
would). Every route goes through the same requests on one keep-alive connection, read by a
strict client: a body that overruns or falls short of its Content-Length breaks the next
answer. What the middleware handed the server (path-send or body messages, the bodies of HEAD
answers) is read back from the recorder in front of the applications, and what was left behind
(open data files, tasks inside the middleware, Django requests never finished) from its
``/_state``; the servers run with the cyclic garbage collector off, so that a file only a
collection would close is seen every time.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_launch import OFFERS_PATHSEND, SERVERS, Served, launch, self_signed, workdir_fixture
from server_configs.checks import cases, check_full, check_single, with_etag
from server_configs.launch import write_data
from support import HOST, RawClient, RawResponse, free_port, parse_multipart

pytestmark = pytest.mark.network

ETAG = '"stream-v1"'  # the Django routes' own strong validator (asgiapps.ETAG_STREAM)
SIZE = 200_003  # odd, larger than every server's and framework's block size
BIG = 64 << 20  # a sparse file, for disconnects in the middle of a long range
# Routes and who answers their ranges: the middleware ("ours"), or the app itself
# (Starlette's FileResponse answers Range; the middleware passes its 206 and 416 through).
ROUTES = {
    "/raw/file": "ours", "/raw/gen": "ours",
    "/starlette/stream": "ours", "/starlette/file": "app", "/starlette/bytes": "ours",
    "/fastapi/stream": "ours", "/fastapi/file": "app", "/fastapi/bytes": "ours",
    "/django/file": "ours", "/django/stream": "ours",
    "/quart/bytes": "ours", "/quart/stream": "ours",
    "/litestar/file": "ours", "/litestar/stream": "ours",
}
# Routes whose app sends http.response.pathsend for a full 200 when it is offered.
PATHSEND_ROUTES = {"/raw/file", "/starlette/file", "/fastapi/file"}
CLEAN = {"open_files": [], "tasks": [], "unfinished": 0, "pending": {}, "temp_files": []}
ERRORS = re.compile(r"Traceback|Exception in ASGI|Error in ASGI|ERROR|Exception inside")


workdir = workdir_fixture("rangewsgi-asgi-")


@pytest.fixture(scope="module")
def files(workdir: Path) -> tuple[Path, bytes, Path]:
    path, data = write_data(workdir, SIZE)
    big = workdir / "big.bin"
    with open(big, "wb") as file:
        file.truncate(BIG)  # sparse: no 64 MiB written
    return path, data, big


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest, workdir: Path,
           files: tuple[Path, bytes, Path]) -> Iterator[Served]:
    name: str = request.param
    path, data, big = files
    server = launch(name, free_port(), workdir, path, big)
    try:
        yield Served(server, name, data)
    finally:
        server.stop()


def get_json(port: int, path: str) -> Any:
    with RawClient(port, timeout=10) as client:
        return json.loads(client.request(path).body)


def check_multi_any_framing(resp: RawResponse, data: bytes,
                            spans: list[tuple[int, int]]) -> None:
    """multipart/byteranges as an app may frame it (RFC 2046: the CRLF after the close
    delimiter is optional): each part's Content-Range and bytes, in order."""
    assert resp.status == 206, (resp.status, resp.headers)
    ctype = resp.header("Content-Type") or ""
    match = re.fullmatch(r"multipart/byteranges; ?boundary=(\S+)", ctype)
    assert match is not None, ctype
    assert resp.header("Content-Length") == str(len(resp.body))
    delimiter = b"--" + match.group(1).encode()
    assert resp.body.rstrip(b"\r\n").endswith(delimiter + b"--")
    pieces = resp.body.split(b"\r\n" + delimiter)
    assert pieces[0].startswith(delimiter + b"\r\n")
    pieces[0] = pieces[0][len(delimiter):]
    parts = [p for p in pieces if not p.startswith(b"--")]
    assert len(parts) == len(spans)
    for part, (first, last) in zip(parts, spans, strict=True):
        head, _, body = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        fields = dict(line.decode().lower().split(": ", 1) for line in head.split(b"\r\n"))
        assert fields["content-range"] == f"bytes {first}-{last}/{len(data)}"
        assert body == data[first:last + 1]


def run_cases(client: RawClient, route: str, data: bytes, answered_by: str) -> None:
    """Every case of ``checks.cases`` and a 304, on one keep-alive connection."""
    first = client.request(route)
    check_full(first, data)
    assert first.header("Accept-Ranges") == "bytes"
    etag = first.header("ETag")
    assert etag is not None and etag.startswith('"'), first.headers
    n = len(data)
    for name, (method, headers, check) in cases(n).items():
        resp = client.request(route, with_etag(headers, etag), method)
        if name == "multi" and answered_by == "app":
            check_multi_any_framing(resp, data, [(0, 9), (70000, 140000), (n - 5, n - 1)])
        else:
            check(resp, data)
        if method == "HEAD":
            assert resp.header("Content-Length") == str(n)
    # RFC 9110 13.1.2: If-None-Match with the entity tag the 200 carried: 304, no content.
    resp = client.request(route, {"If-None-Match": etag})
    assert resp.status == 304, (resp.status, resp.headers)
    assert resp.header("ETag") == etag and resp.body == b""
    # And the connection is still in step: a last range, then nothing more on the wire.
    check_single(client.request(route, {"Range": "bytes=1-2"}), data, 1, 2)
    client.assert_idle()


@pytest.mark.parametrize("route", list(ROUTES))
def test_route(served: Served, route: str) -> None:
    get_json(served.server.port, "/_log")  # start from an empty record
    with RawClient(served.server.port) as client:
        run_cases(client, route, served.data, ROUTES[route])
    # Nothing left behind by any of these answers (Django's response closed, its request
    # finished), without a garbage collection.
    assert wait_until_clean(served.server.port) == CLEAN
    log = get_json(served.server.port, "/_log")
    assert [entry["method"] for entry in log][:2] == ["GET", "GET"]
    for entry in log:
        types = [m[0] for m in entry["messages"]]
        if entry["method"] == "HEAD":
            # RFC 9110 9.3.2: no content, and one body message only (daphne writes every
            # HEAD body message after the first onto the wire).
            assert entry["messages"][1:] == [["http.response.body", 0, False]], entry
        elif (route in PATHSEND_ROUTES and served.name in OFFERS_PATHSEND
              and entry["status"] == 200):
            # A full 200 goes to the server's own path-send, untouched.
            assert types == ["http.response.start", "http.response.pathsend"], entry
        else:
            assert "http.response.pathsend" not in types, entry


def wait_until_clean(port: int, timeout: float = 10.0) -> dict[str, Any]:
    """Poll ``/_state`` until no data file is open, no task is inside the middleware and every
    Django request has finished; the last state seen."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = get_json(port, "/_state")
        if state == CLEAN:
            return state
        time.sleep(0.05)
    return state


@pytest.mark.parametrize("route", ["/raw/big", "/starlette/stream"])
def test_client_gone_mid_range(served: Served, route: str) -> None:
    port = served.server.port
    assert wait_until_clean(port) == CLEAN  # what earlier tests left is theirs, not ours
    for _ in range(3):
        with socket.create_connection((HOST, port), timeout=10) as sock:
            sock.sendall(f"GET {route} HTTP/1.1\r\nHost: x\r\nRange: bytes=1-\r\n\r\n"
                         .encode())
            received = b""
            while b"\r\n\r\n" not in received or len(received) < 70_000:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            assert received.startswith(b"HTTP/1.1 206 ")
    # The files are closed, and no task is left inside the middleware.
    assert wait_until_clean(port) == CLEAN
    with RawClient(port) as client:  # and the server still answers
        check_single(client.request("/raw/file", {"Range": "bytes=0-0"}), served.data, 0, 0)


@pytest.mark.parametrize("route", ["/django/file", "/django/stream"])
def test_django_finishes_every_answer(served: Served, route: str) -> None:
    # Answers the middleware completes before Django has sent its whole body (a range, a 416,
    # a HEAD, a 304): Django must still close its response (the FileResponse's file) and send
    # request_finished, as it does when a client goes away. The servers run without the
    # cyclic garbage collector: a skipped close() leaves the file open for good.
    port, data = served.server.port, served.data
    n = len(data)
    assert wait_until_clean(port) == CLEAN
    answers = {"range": ({"Range": "bytes=10-19"}, "GET", 206),
               "ranges": ({"Range": "bytes=0-0,5-9"}, "GET", 206),
               "unsatisfiable": ({"Range": f"bytes={n}-"}, "GET", 416),
               "head": ({}, "HEAD", 200),
               "not modified": ({"If-None-Match": ETAG}, "GET", 304)}
    for name, (headers, method, status) in answers.items():
        with RawClient(port) as client:
            resp = client.request(route, headers, method)
        assert resp.status == status, (name, resp.status, resp.headers)
        if name == "range":
            check_single(resp, data, 10, 19)
        elif name == "ranges":
            parts = parse_multipart(resp.body, resp.header("Content-Type") or "")
            assert [body for _, body in parts] == [data[0:1], data[5:10]]
        elif name == "unsatisfiable":
            assert resp.header("Content-Range") == f"bytes */{n}"
        else:
            assert resp.body == b""
            assert resp.header("ETag") == ETAG
        assert wait_until_clean(port) == CLEAN, name


def fields(resp: RawResponse) -> list[tuple[str, str]]:
    """The answer's header fields, names lowercased, without the clock's ``date``."""
    return [(name.lower(), value) for name, value in resp.headers if name.lower() != "date"]


def one(port: int, route: str, method: str) -> RawResponse:
    with RawClient(port) as client:  # one connection each: nothing a server wrote by
        return client.request(route, {"Range": "bytes=0-1"}, method)  # mistake carries over


@pytest.mark.parametrize("route", ["/text", "/stream"])
def test_head_passed_through_is_framed_as_without_the_middleware(served: Served,
                                                                  route: str) -> None:
    # RFC 9110 9.3.2 and 8.6: a 200 without a length is passed through; on HEAD the app's
    # answer goes to the server as the app gave it (body included), so the server frames it
    # as it frames the bare app's: the same fields as without the middleware, for GET and
    # HEAD alike (a Content-Length the GET would carry, or chunked, never a 0 of our making).
    port = served.server.port
    for method in ("GET", "HEAD"):
        bare = one(port, f"/bare{route}", method)
        wrapped = one(port, f"/plain{route}", method)
        assert (wrapped.status, fields(wrapped)) == (bare.status, fields(bare)), method
        assert wrapped.status == 200
        assert wrapped.body == (b"hello world" if method == "GET" else b"")
    log = [entry for entry in get_json(port, "/_log") if entry["path"].startswith("/plain")]
    head = [entry for entry in log if entry["method"] == "HEAD"]
    body = b"hello world"
    assert sum(size for _, size, _ in head[-1]["messages"][1:]) == len(body)


@pytest.mark.parametrize("route", ["/raw/gen", "/django/stream", "/starlette/stream"])
def test_head_answered_here_has_the_fields_of_the_get(served: Served, route: str) -> None:
    # RFC 9110 9.3.2: where the middleware answers the HEAD (a 200 whose fields it made),
    # they are those of the GET, Content-Length included.
    port = served.server.port
    get, head = one(port, route, "GET"), one(port, route, "HEAD")
    assert get.status == 206 and head.status == 200  # Range is for GET only (14.2)
    full = [(k, v) for k, v in fields(get) if k not in ("content-range", "content-length")]
    assert [(k, v) for k, v in fields(head) if k != "content-length"] == full
    assert head.header("Content-Length") == str(len(served.data))


def test_nothing_logged_as_an_error(served: Served) -> None:
    time.sleep(0.2)
    log = served.server.log()
    assert not ERRORS.search(log), log[-3000:]


# -- HTTP/2 over TLS (hypercorn), checked with curl --


@pytest.fixture(scope="module")
def h2_server(workdir: Path, files: tuple[Path, bytes, Path]) -> Iterator[Served]:
    from server_configs.launch import require

    require("curl")
    path, data, big = files
    tls = self_signed(workdir)
    server = launch("hypercorn", free_port(), workdir, path, big, tls=tls)
    try:
        yield Served(server, "hypercorn-h2", data)
    finally:
        server.stop()


def curl_h2(port: int, route: str, headers: dict[str, str], workdir: Path,
            method: str = "GET") -> RawResponse:
    """One request with ``curl --http2 -k``; the answer must have come over HTTP/2."""
    head, body = workdir / "h2-head", workdir / "h2-body"
    body.unlink(missing_ok=True)  # curl writes no file for an answer without content
    cmd = ["curl", "--http2", "-k", "-sS", "--max-time", "20", "-D", str(head),
           "-o", str(body), "-w", "%{http_version}"]
    cmd += ["-I"] if method == "HEAD" else []
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    out = subprocess.run([*cmd, f"https://{HOST}:{port}{route}"], capture_output=True,
                         text=True, timeout=30, check=True)
    assert out.stdout == "2", out.stdout
    lines = head.read_bytes().decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
    content = b"" if method == "HEAD" or not body.exists() else body.read_bytes()
    return RawResponse(status, "", [(k, v) for k, v in fields], content)


@pytest.mark.parametrize("route", ["/raw/file", "/starlette/stream", "/django/file",
                                   "/litestar/file"])
def test_http2_over_tls(h2_server: Served, route: str, workdir: Path) -> None:
    port, data = h2_server.server.port, h2_server.data
    n = len(data)
    first = curl_h2(port, route, {}, workdir)
    check_full(first, data)
    etag = first.header("etag")
    assert etag is not None
    for name in ("single", "suffix", "multi", "unsatisfiable", "if-range-true", "head"):
        method, headers, check = cases(n)[name]
        check(curl_h2(port, route, with_etag(headers, etag), workdir, method), data)
    resp = curl_h2(port, route, {"If-None-Match": etag}, workdir)
    assert resp.status == 304 and resp.body == b""
