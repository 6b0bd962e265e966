"""``SourceResponse`` and ``send_source``: ranged sources on ASGI, in process and over uvicorn.

A counting source (``source_apps.Counting``) records every ``read_range`` call, every
iteration and every ``close()``. Under ``rangewsgi.asgi.RangeMiddleware`` a range is exactly
one ``read_range`` call per part, in order, the source never iterated; a ``416``, ``304``,
``412`` or ``HEAD`` reads nothing; ``close()`` runs once. Alone (no middleware) the response
streams the whole source as a ``200`` with its length and validators. The same app is written
as a raw ASGI app, with Starlette, with FastAPI (the response returned) and with Litestar (the
route annotated with the response class), checked byte for byte; reads run in worker threads,
and a read that blocks does not stop the server from answering another request.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import source_apps
from source_apps import (
    DATA,
    ETAG,
    FRAMEWORKS,
    LAST_MODIFIED,
    SIZE,
    Answer,
    Counting,
    build,
    call,
    call_async,
)
from support import (
    HOST,
    ROOT,
    RawClient,
    RawResponse,
    Server,
    free_port,
    parse_multipart,
    start_server,
)

from rangewsgi import asgi_sources
from rangewsgi.asgi_sources import SOURCE_EXTENSION, SourceResponse, send_source
from rangewsgi.plan import Kind, Limits, Plan, Request, decide, read_headers

MULTI = "bytes=0-99,200000-200099,-100"
MULTI_SPANS = [(0, 100), (200_000, 200_100), (SIZE - 100, SIZE)]


def plan_for(request: Request, size: int = SIZE, etag: str = ETAG) -> Plan:
    """The core's plan for a 200 of ``size`` bytes with ``etag``."""
    headers = [("content-length", str(size)), ("content-type", "video/mp4"), ("etag", etag),
               ("last-modified", LAST_MODIFIED)]
    facts = read_headers("200 OK", headers)
    assert facts is not None
    return decide(request, "200 OK", headers, facts, size, Limits())


def sent(plan: Plan, source: Any, head: bool = False, check: Any = None) -> Answer:
    """``send_source`` for ``plan``, its messages collected."""
    answer = Answer()

    async def send(message: dict[str, Any]) -> None:
        answer.messages.append(message)
        answer.body += message.get("body", b"")
        answer.complete = not message.get("more_body", False)

    asyncio.run(send_source(send, source, plan, head, check or (lambda: None)))
    return answer


def check_parts(body: bytes, content_type: str, spans: list[tuple[int, int]]) -> None:
    parts = parse_multipart(body, content_type)
    assert [(fields["content-range"], data) for fields, data in parts] == [
        (f"bytes {a}-{b - 1}/{SIZE}", DATA[a:b]) for a, b in spans]
    assert {fields["content-type"] for fields, _ in parts} == {"video/mp4"}


# -- the module's imports --


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_imports_no_adapter_and_no_framework() -> None:
    done = python(
        "import sys, rangewsgi.asgi_sources\n"
        "bad = [m for m in ('rangewsgi.asgi', 'rangewsgi.middleware', 'werkzeug',"
        " 'starlette') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "from rangewsgi.asgi_sources import SourceResponse\n"
        "from starlette.responses import Response\n"
        "assert issubclass(SourceResponse, Response)\n")
    assert done.returncode == 0, done.stderr


def test_the_asgi_middleware_does_not_load_starlette_for_it() -> None:
    """The middleware imports this module's constants; ``SourceResponse`` stays unbuilt."""
    done = python("import sys, rangewsgi.asgi, rangewsgi.asgi_sources\n"
                  "assert 'starlette' not in sys.modules\n")
    assert done.returncode == 0, done.stderr


def test_without_starlette_a_plain_class_serves_raw_asgi() -> None:
    done = python(
        "import sys\n"
        "sys.modules['starlette'] = None  # as if it were not installed\n"
        "import importlib.util\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'starlette' else 1\n"
        "sys.path.insert(0, 'tests')\n"
        "from rangewsgi.asgi_sources import SourceResponse\n"
        "assert SourceResponse.__mro__[1:] == (object,), SourceResponse.__mro__\n"
        "import source_apps as s\n"
        "source = s.Counting()\n"
        "a = s.call(s.build('raw', lambda: source, ranged=False))\n"
        "assert a.status == 200 and a.body == s.DATA and source.closes == 1\n")
    assert done.returncode == 0, done.stderr


# -- send_source: what the middleware calls --


@pytest.mark.parametrize("value, spans", [("bytes=100-199", [(100, 200)]),
                                          ("bytes=-100", [(SIZE - 100, SIZE)]),
                                          ("bytes=250000-", [(250_000, SIZE)])])
def test_one_range_is_one_read_range_call(value: str, spans: list[tuple[int, int]]) -> None:
    source = Counting()
    plan = plan_for(Request("GET", range=value))
    assert plan.kind is Kind.PARTIAL
    answer = sent(plan, source)
    assert answer.body == DATA[spans[0][0]:spans[0][1]] and answer.complete
    assert source.calls == spans and source.iterations == 0 and source.closes == 0
    assert not source.on_loop


def test_multi_range_calls_read_range_per_part_in_order() -> None:
    source = Counting()
    plan = plan_for(Request("GET", range="bytes=-100,0-99,200000-200099"))
    assert plan.kind is Kind.MULTIPART and plan.framing is not None
    answer = sent(plan, source)
    spans = [(SIZE - 100, SIZE), (0, 100), (200_000, 200_100)]
    assert source.calls == spans and source.iterations == 0
    check_parts(answer.body, plan.framing.content_type, spans)
    assert len(answer.body) == plan.framing.content_length


@pytest.mark.parametrize("request_, kind", [
    (Request("GET", range=f"bytes={SIZE}-"), Kind.UNSATISFIABLE),
    (Request("GET", if_none_match=ETAG), Kind.NOT_MODIFIED),
    (Request("GET", if_match='"other"'), Kind.PRECONDITION_FAILED),
], ids=["416", "304", "412"])
def test_fixed_answers_read_nothing(request_: Request, kind: Kind) -> None:
    source = Counting()
    plan = plan_for(request_)
    assert plan.kind is kind
    answer = sent(plan, source)
    assert source.calls == [] and source.iterations == 0 and answer.complete
    assert len(answer.messages) == 1
    assert (answer.body == b"") is (kind is Kind.NOT_MODIFIED)


def test_head_sends_no_content_and_reads_nothing() -> None:
    source = Counting()
    answer = sent(plan_for(Request("HEAD")), source, head=True)
    assert answer.messages == [{"type": "http.response.body", "body": b"", "more_body": False}]
    assert source.calls == [] and source.iterations == 0


def test_full_reads_in_bounded_trips_off_the_loop() -> None:
    source = Counting(block=8192)
    trips: list[int] = []
    plan = plan_for(Request("GET"))
    assert plan.kind is Kind.FULL
    answer = sent(plan, source, check=lambda: trips.append(len(source.calls)))
    assert answer.body == DATA and source.iterations == 1 and source.calls == []
    assert source.largest == 8192 and not source.on_loop
    # one check per trip, each trip a bounded number of blocks (TRIP_BYTES)
    assert len(trips) == -(-SIZE // asgi_sources.TRIP_BYTES)
    assert max(len(m["body"]) for m in answer.messages) <= 8192


def test_check_stops_the_reading() -> None:
    source = Counting(block=8192)
    checks = 0

    def check() -> None:
        nonlocal checks
        checks += 1
        if checks == 2:
            raise ConnectionResetError("client gone")

    with pytest.raises(ConnectionResetError):
        sent(plan_for(Request("GET", range="bytes=0-")), source, check=check)
    assert source.calls == [(0, SIZE)]


@pytest.mark.parametrize("extra", [1, -1])
def test_a_source_giving_another_length_aborts(extra: int) -> None:
    class Lying(Counting):
        def read_range(self, start: int, stop: int) -> Iterator[bytes]:
            self.calls.append((start, stop))
            yield DATA[start:stop + extra]

    with pytest.raises(OSError):  # rangewsgi.files.TruncatedBody
        sent(plan_for(Request("GET", range="bytes=10-19")), Lying())


# -- SourceResponse alone (no middleware) --


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_alone_streams_the_whole_source(framework: str) -> None:
    source = Counting()
    answer = call(build(framework, lambda: source, ranged=False))
    assert answer.status == 200 and answer.body == DATA and answer.complete
    assert answer.header("content-length") == str(SIZE)
    assert answer.header("content-type") == "video/mp4"
    assert answer.header("etag") == ETAG and answer.header("last-modified") == LAST_MODIFIED
    assert answer.header("x-app") == framework
    assert source.iterations == 1 and source.calls == [] and source.closes == 1
    assert not source.on_loop


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_alone_head_has_no_content(framework: str) -> None:
    source = Counting()
    answer = call(build(framework, lambda: source, ranged=False), "HEAD")
    assert answer.status == 200 and answer.header("content-length") == str(SIZE)
    assert answer.body == b"" and answer.complete
    assert source.iterations == 0 and source.calls == [] and source.closes == 1


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_alone_range_is_ignored(framework: str) -> None:
    """Without the middleware nothing answers Range: the whole 200 (RFC 9110 14.2 MAY)."""
    source = Counting()
    answer = call(build(framework, lambda: source, ranged=False), headers={"Range": "bytes=0-9"})
    assert answer.status == 200 and answer.body == DATA and source.closes == 1


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_alone_stops_reading_when_the_client_goes(framework: str) -> None:
    source = Counting(DATA * 10, block=4096)
    answer = call(build(framework, lambda: source, ranged=False), disconnect_after=1)
    assert not answer.complete and source.closes == 1
    # The trip in flight when the client went is the last one.
    assert 0 < source.read_bytes <= asgi_sources.TRIP_BYTES < source.size


def test_alone_send_error_stops_quietly_and_closes() -> None:
    source = Counting(block=4096)

    async def run() -> int:
        sends = 0

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()
            return {}

        async def send(message: dict[str, Any]) -> None:
            nonlocal sends
            sends += 1
            if sends == 3:
                raise ConnectionResetError  # a spec 2.4 server's send, client gone

        await SourceResponse(source)(source_apps.scope_for(), receive, send)
        return sends

    assert asyncio.run(run()) == 3
    assert source.closes == 1


def test_a_source_error_propagates_and_closes() -> None:
    class Failing(Counting):
        def __iter__(self) -> Iterator[bytes]:
            yield DATA[:10]
            raise ConnectionError("upstream reset")

    source = Failing()
    with pytest.raises(ConnectionError):
        call(build("raw", lambda: source, ranged=False))
    assert source.closes == 1


def test_cancelled_mid_read_closes_after_the_read() -> None:
    gate = threading.Event()
    source = Counting(gate=gate)
    closed_while_reading: list[bool] = []
    original = source.close

    def close() -> None:
        closed_while_reading.append(not gate.is_set())
        original()

    source.close = close  # type: ignore[method-assign]

    async def run() -> None:
        task = asyncio.ensure_future(call_async(build("raw", lambda: source, ranged=False)))
        for _ in range(1000):  # until the first read waits in its thread
            if source.waiting:
                break
            await asyncio.sleep(0.01)
        assert source.waiting == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert source.closes == 0  # not under the reading thread
        gate.set()
        for _ in range(500):  # bounded: the read returns, then the close runs
            if source.closes:
                break
            await asyncio.sleep(0.01)

    asyncio.run(run())
    assert source.closes == 1 and closed_while_reading == [False]


def test_headers_media_type_and_background() -> None:
    ran: list[str] = []

    async def background() -> None:
        ran.append("done")

    source = Counting(etag=None, content_type=None)
    response = SourceResponse(source, status_code=203,
                              headers={"Content-Length": "5", "ETag": '"app"',
                                       "Cache-Control": "no-store"},
                              media_type="application/x-test", background=background)
    answer = call(lambda scope, receive, send: response(scope, receive, send))
    assert answer.status == 203 and answer.body == DATA and ran == ["done"]
    assert answer.headers == [("etag", '"app"'), ("cache-control", "no-store"),
                              ("content-length", str(SIZE)),
                              ("content-type", "application/x-test"),
                              ("last-modified", LAST_MODIFIED)]
    plain = SourceResponse(Counting(content_type=None))
    assert (b"content-type", b"application/octet-stream") in plain.raw_headers


def test_starlette_response_api_works_on_it() -> None:
    """FastAPI returns it untouched (a Starlette ``Response``); its ``headers`` and
    ``set_cookie`` change what is sent."""
    from fastapi import FastAPI

    api = FastAPI()
    source = Counting()

    @api.get("/file")
    async def endpoint() -> SourceResponse:
        answer = SourceResponse(source)
        answer.set_cookie("seen", "1")
        answer.headers["cache-control"] = "private"
        return answer

    answer = call(api)
    assert answer.status == 200 and answer.body == DATA and source.closes == 1
    assert (answer.header("set-cookie") or "").startswith("seen=1")
    assert answer.header("cache-control") == "private"


# -- under RangeMiddleware, in process --


@pytest.fixture(scope="module")
def hooked() -> None:
    """The middleware offers the source extension (added in rangewsgi.asgi)."""
    seen: list[Any] = []

    async def probe(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(SOURCE_EXTENSION in (scope.get("extensions") or {}))
        await SourceResponse(Counting())(scope, receive, send)

    call(build_raw_probe(probe))
    assert seen == [True], "rangewsgi.asgi.RangeMiddleware does not offer the extension"


def build_raw_probe(app: Any) -> Any:
    from rangewsgi.asgi import RangeMiddleware

    return RangeMiddleware(app)


def ranged(framework: str, source: Counting, method: str = "GET",
           headers: dict[str, str] | None = None) -> Answer:
    answer = call(build(framework, lambda: source), method, headers)
    assert source.closes == 1, f"closed {source.closes} times"
    assert source.iterations == (1 if answer.status == 200 and method == "GET" else 0)
    assert not source.on_loop
    return answer


@pytest.mark.usefixtures("hooked")
@pytest.mark.parametrize("framework", FRAMEWORKS)
class TestUnderTheMiddleware:
    def test_200(self, framework: str) -> None:
        source = Counting()
        answer = ranged(framework, source)
        assert answer.status == 200 and answer.body == DATA
        assert answer.header("accept-ranges") == "bytes"
        assert answer.header("content-length") == str(SIZE)
        assert answer.header("etag") == ETAG and answer.header("x-app") == framework
        assert source.calls == []

    @pytest.mark.parametrize("value, span", [("bytes=1000-1999", (1000, 2000)),
                                             ("bytes=-500", (SIZE - 500, SIZE))])
    def test_one_range(self, framework: str, value: str, span: tuple[int, int]) -> None:
        source = Counting()
        answer = ranged(framework, source, headers={"Range": value})
        assert answer.status == 206 and answer.body == DATA[span[0]:span[1]]
        assert answer.header("content-range") == f"bytes {span[0]}-{span[1] - 1}/{SIZE}"
        assert answer.header("content-length") == str(span[1] - span[0])
        assert source.calls == [span]

    def test_multi_range(self, framework: str) -> None:
        source = Counting()
        answer = ranged(framework, source, headers={"Range": MULTI})
        assert answer.status == 206
        check_parts(answer.body, answer.header("content-type") or "", MULTI_SPANS)
        assert source.calls == MULTI_SPANS

    def test_416_reads_nothing(self, framework: str) -> None:
        source = Counting()
        answer = ranged(framework, source, headers={"Range": f"bytes={SIZE}-"})
        assert answer.status == 416 and answer.header("content-range") == f"bytes */{SIZE}"
        assert source.calls == []

    def test_if_range(self, framework: str) -> None:
        source = Counting()
        answer = ranged(framework, source, headers={"Range": "bytes=5-9", "If-Range": ETAG})
        assert answer.status == 206 and answer.body == DATA[5:10] and source.calls == [(5, 10)]
        source = Counting()
        answer = ranged(framework, source, headers={"Range": "bytes=5-9", "If-Range": '"old"'})
        assert answer.status == 200 and answer.body == DATA and source.calls == []

    def test_304_and_412(self, framework: str) -> None:
        source = Counting()
        answer = ranged(framework, source, headers={"If-None-Match": ETAG})
        assert answer.status == 304 and answer.body == b"" and source.calls == []
        source = Counting()
        answer = ranged(framework, source, headers={"If-Match": '"other"'})
        assert answer.status == 412 and source.calls == []

    def test_head(self, framework: str) -> None:
        source = Counting()
        answer = ranged(framework, source, "HEAD", {"Range": "bytes=0-9"})
        assert answer.status == 200 and answer.body == b""
        assert answer.header("content-length") == str(SIZE)
        assert answer.header("accept-ranges") == "bytes" and source.calls == []


@pytest.mark.usefixtures("hooked")
def test_a_blocking_read_leaves_the_loop_free_in_process() -> None:
    gate = threading.Event()
    source = Counting(gate=gate)

    async def run() -> None:
        slow = asyncio.ensure_future(call_async(build("raw", lambda: source), "GET",
                                                {"Range": "bytes=0-99"}))
        for _ in range(1000):  # until the read waits in its thread
            if source.waiting or slow.done():
                break
            await asyncio.sleep(0.01)
        # A read on the event loop would have held it until the gate's timeout: the request
        # would be over (failed) before this line ran again.
        assert source.waiting == 1 and not slow.done(), "the read held the event loop"
        other = await call_async(build("raw", Counting))  # answered while the read blocks
        assert other.status == 200 and other.body == DATA and not slow.done()
        gate.set()
        answer = await slow
        assert answer.status == 206 and answer.body == DATA[:100]

    asyncio.run(run())
    assert source.closes == 1


# -- over uvicorn --


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pytest.importorskip("uvicorn")
    work = tmp_path_factory.mktemp("uvicorn")
    port = free_port()
    started = start_server([sys.executable, "-m", "uvicorn", "--host", HOST, "--port",
                            str(port), "--log-level", "warning", "--no-access-log",
                            "source_apps:app"], port, cwd=ROOT / "tests",
                           log_path=work / "uvicorn.log")
    try:
        yield started
    finally:
        started.stop()


def served(server: Server, path: str, method: str = "GET",
           headers: dict[str, str] | None = None) -> tuple[RawResponse, dict[str, Any]]:
    """One answer over a socket, and the report of the one source it made."""
    with RawClient(server.port) as client:
        client.request("/_log")
        answer = client.request(path, headers, method)
        client.assert_idle(0.05)
        log = client.request("/_log")
    reports = json.loads(log.body)
    assert len(reports) == 1, (reports, server.log()[-2000:])
    report: dict[str, Any] = reports[0]
    assert report["closes"] == 1 and not report["on_loop"], report
    return answer, report


@pytest.mark.network
@pytest.mark.usefixtures("hooked")
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_over_uvicorn(server: Server, framework: str) -> None:
    path = f"/{framework}/file"
    answer, report = served(server, path)
    assert answer.status == 200 and answer.body == DATA and report["iterations"] == 1
    assert answer.header("etag") == ETAG and answer.header("accept-ranges") == "bytes"
    answer, report = served(server, path, headers={"Range": "bytes=100-199"})
    assert answer.status == 206 and answer.body == DATA[100:200]
    assert report["calls"] == [[100, 200]] and report["iterations"] == 0
    answer, report = served(server, path, headers={"Range": "bytes=-100"})
    assert answer.body == DATA[-100:] and report["calls"] == [[SIZE - 100, SIZE]]
    answer, report = served(server, path, headers={"Range": MULTI})
    check_parts(answer.body, answer.header("Content-Type") or "", MULTI_SPANS)
    assert report["calls"] == [list(span) for span in MULTI_SPANS]
    answer, report = served(server, path, headers={"Range": f"bytes={SIZE + 1}-"})
    assert answer.status == 416 and report["calls"] == [] and report["iterations"] == 0
    answer, report = served(server, path, headers={"Range": "bytes=0-9", "If-Range": ETAG})
    assert answer.status == 206 and answer.body == DATA[:10]
    answer, report = served(server, path, headers={"Range": "bytes=0-9", "If-Range": '"x"'})
    assert answer.status == 200 and answer.body == DATA and report["calls"] == []
    answer, report = served(server, path, headers={"If-None-Match": ETAG})
    assert answer.status == 304 and report["calls"] == [] and report["iterations"] == 0
    answer, report = served(server, path, "HEAD", {"Range": "bytes=0-9"})
    assert answer.status == 200 and answer.header("Content-Length") == str(SIZE)
    assert report["calls"] == [] and report["iterations"] == 0


@pytest.mark.network
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_alone_over_uvicorn(server: Server, framework: str) -> None:
    path = f"/alone/{framework}/file"
    answer, report = served(server, path, headers={"Range": "bytes=0-9"})
    assert answer.status == 200 and answer.body == DATA and report["iterations"] == 1
    assert answer.header("Content-Length") == str(SIZE) and answer.header("ETag") == ETAG
    answer, report = served(server, path, "HEAD")
    assert answer.status == 200 and answer.header("Content-Length") == str(SIZE)
    assert report["iterations"] == 0


@pytest.mark.network
@pytest.mark.usefixtures("hooked")
def test_a_blocking_read_does_not_stop_the_server(server: Server) -> None:
    """While a read sleeps in its thread, another request on the server is answered."""
    with RawClient(server.port) as client:
        client.request("/_log")
    slow = socket.create_connection((HOST, server.port), timeout=30)
    try:
        slow.sendall(f"GET /slow/file HTTP/1.1\r\nHost: {HOST}\r\nRange: bytes=0-99\r\n"
                     "\r\n".encode())
        with RawClient(server.port, timeout=10) as client:
            # Each poll is a request the server answers while the read blocks in its thread
            # (a read on the event loop would stop every answer until the gate's timeout).
            for _ in range(500):
                if json.loads(client.request("/_waiting").body) == 1:
                    break
                time.sleep(0.01)
            else:
                raise AssertionError("the read never started")
            assert client.request("/open").status == 200
        received = b""
        while not received.endswith(DATA[:100]):
            data = slow.recv(65536)
            assert data, received
            received += data
        assert received.startswith(b"HTTP/1.1 206 ")
    finally:
        slow.close()


# -- the S3 recipe for FastAPI, against moto --

S3_KEY = "clips/movie.mp4"


def recipe_block() -> str:
    """The python block of docs/sources.md that shows examples/s3_fastapi.py."""
    from markdown_blocks import fenced_blocks

    page = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    shown = [b.text for b in fenced_blocks(page)
             if b.lang == "python" and "examples/s3_fastapi.py" in b.before]
    assert len(shown) == 1, "docs/sources.md shows examples/s3_fastapi.py once"
    return shown[0]


def test_the_docs_show_the_s3_recipe_as_it_is() -> None:
    example = (ROOT / "examples" / "s3_fastapi.py").read_text(encoding="utf-8")
    block = recipe_block()
    assert "def make_app(" in block and block in example


@pytest.mark.network
def test_s3_recipe_against_moto() -> None:
    pytest.importorskip("boto3")
    pytest.importorskip("uvicorn")
    import boto3  # type: ignore[import-untyped,unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]
    from server_configs.checks import check_416, check_full, check_multi, check_single
    from sourceservers import BUCKET, CREDENTIALS, moto_requests, serving, start_moto

    with serving("rangewsgi-asgi-s3-", start_moto) as (moto, workdir):
        client = boto3.client("s3", endpoint_url=moto.url, **CREDENTIALS,
                              config=Config(s3={"addressing_style": "path"}))
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key=S3_KEY, Body=DATA, ContentType="video/mp4")
        client.close()
        port = free_port()
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}
        server = start_server([sys.executable, str(ROOT / "examples" / "s3_fastapi.py"),
                               "--bucket", BUCKET, "--endpoint-url", moto.url,
                               "--port", str(port)], port, env=env, cwd=workdir,
                              log_path=workdir / "s3_fastapi.log")
        try:
            with RawClient(port) as http:
                def get(headers: dict[str, str] | None = None, method: str = "GET",
                        target: str = f"/files/{S3_KEY}") -> RawResponse:
                    return http.request(target, headers, method)

                check_single(get({"Range": "bytes=1000-1999"}), DATA, 1000, 1999)
                check_multi(get({"Range": MULTI}), DATA,
                            [(a, b - 1) for a, b in MULTI_SPANS], "video/mp4")
                full = get()
                check_full(full, DATA)
                check_416(get({"Range": f"bytes={SIZE + 5}-"}), DATA)
                etag = full.header("ETag")
                assert etag and get({"If-None-Match": etag}).status == 304
                head = get({"Range": "bytes=0-9"}, "HEAD")
                assert head.status == 200 and head.header("Content-Length") == str(SIZE)
                assert head.header("Accept-Ranges") == "bytes" and head.body == b""
                assert get(target="/files/absent.mp4").status == 404
                http.assert_idle(0.05)
            gets = [status for method, status in moto_requests(moto, BUCKET, S3_KEY)
                    if method == "GET"]
            assert gets == [206, 206, 206, 206, 200], server.log()[-2000:]
        finally:
            server.stop()
