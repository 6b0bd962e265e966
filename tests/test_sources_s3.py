"""``S3Source``: S3 objects as ranged sources, against moto's S3 server and a faulty endpoint.

moto (``moto[server]``, started here) is the real S3 API: exact bytes, one
``GetObject(Range, IfMatch)`` per part (counted in its request log), an object replaced between
two parts aborts the response (412), a versioned bucket serves the first version throughout.
The faulty endpoint of ``sourceservers.py`` speaks enough S3 for boto3 and fails in every way
listed there: the client gets an error before the headers or a response cut short, and never
a wrong byte. The Flask and Django examples run over real sockets.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_configs.checks import check_416, check_full, check_multi, check_single
from server_configs.launch import in_ci
from sourceservers import (
    BUCKET,
    CREDENTIALS,
    SIZE,
    check_outcome,
    client_sockets,
    fetch,
    moto_requests,
    run_wsgi,
    same_boundary,
    serve_wsgi,
    serving,
    source_app,
    start_moto,
    start_upstream,
    versions,
    wait_until,
)
from support import ROOT, RawClient, Server, free_port, parse_multipart, start_server

from rangewsgi import RangeMiddleware
from rangewsgi.sources import SourceChanged, is_ranged_source

if importlib.util.find_spec("boto3") is None and not in_ci():  # in CI: fail on the import
    pytest.skip("boto3 not installed (pip install -r tests/requirements-sources.txt)",
                allow_module_level=True)

import boto3  # type: ignore[import-untyped,unused-ignore]
from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]

from rangewsgi.sources.s3 import S3Source, UpstreamError

pytestmark = pytest.mark.network

V0, V1 = versions()
KEY = "clips/movie.mp4"
MULTI = "bytes=0-99,200000-200099,-100"
MULTI_SPANS = [(0, 99), (200000, 200099), (SIZE - 100, SIZE - 1)]


@dataclass
class Moto:
    server: Server
    workdir: Path

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, **config: Any) -> Any:
        return boto3.client("s3", endpoint_url=self.url, **CREDENTIALS,
                            config=Config(s3={"addressing_style": "path"}, **config))

    def requests(self, key: str, bucket: str = BUCKET) -> list[tuple[str, int]]:
        """(method, status) of every request moto logged for the object."""
        return moto_requests(self.server, bucket, key)


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with serving("rangewsgi-s3-moto-", start_moto) as (server, workdir):
        store = Moto(server, workdir)
        client = store.client()
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key=KEY, Body=V0, ContentType="video/mp4")
        client.create_bucket(Bucket="versioned")
        client.put_bucket_versioning(Bucket="versioned",
                                     VersioningConfiguration={"Status": "Enabled"})
        client.close()
        yield store


@pytest.fixture(scope="module")
def upstream() -> Iterator[Server]:
    with serving("rangewsgi-s3-upstream-", start_upstream) as (server, _):
        yield server


def s3_app(client: Any, bucket: str = BUCKET, **options: Any) -> RangeMiddleware:
    """A WSGI app answering ``/<key>`` with an ``S3Source`` (404/502 when it cannot)."""

    return source_app(lambda path: S3Source(client, bucket, path.lstrip("/"), **options))


def released(client: Any, port: int) -> bool:
    """Closing the client's idle connections leaves no socket to ``port``: every response
    was read to its end (back to the pool) or closed."""
    manager = client._endpoint.http_session._manager  # botocore's urllib3 PoolManager
    for connections in list(manager.pools._container.values()):
        connections.close()  # urllib3 2's clear() only forgets idle connections
    client.close()
    return wait_until(lambda: client_sockets(port) == 0, 5)


# -- moto: the S3 API --


def test_reads_exact_bytes(moto: Moto) -> None:
    client = moto.client()
    source = S3Source(client, BUCKET, KEY, chunk_size=4096)
    assert is_ranged_source(source)
    assert source.size == SIZE and source.content_type == "video/mp4"
    head = client.head_object(Bucket=BUCKET, Key=KEY)
    assert source.etag == head["ETag"] and source.version_id is None
    assert source.last_modified is not None and source.last_modified.endswith(" GMT")
    for start, stop in [(0, 1), (0, 100), (SIZE - 1, SIZE), (12345, 200001), (0, SIZE)]:
        assert b"".join(source.read_range(start, stop)) == V0[start:stop]
    assert b"".join(source) == V0
    source.close()
    with pytest.raises(ValueError):
        source.read_range(0, 1)
    assert released(client, moto.server.port)


def test_middleware_one_get_per_part(moto: Moto) -> None:
    client = moto.client()
    app = s3_app(client)
    before = len(moto.requests(KEY))
    multi = run_wsgi(app, f"/{KEY}", {"Range": MULTI})
    assert multi.error is None and multi.status.startswith("206")
    parts = parse_multipart(multi.body, multi.header("Content-Type") or "")
    assert [body for _, body in parts] == [V0[a:b + 1] for a, b in MULTI_SPANS]
    # One HEAD, then one ranged GET per part: three parts, three GETs, nothing else.
    assert moto.requests(KEY)[before:] == [("HEAD", 200)] + [("GET", 206)] * 3
    single = run_wsgi(app, f"/{KEY}", {"Range": "bytes=-100"})
    assert single.status.startswith("206") and single.body == V0[-100:]
    assert single.header("ETag") == client.head_object(Bucket=BUCKET, Key=KEY)["ETag"]
    full = run_wsgi(app, f"/{KEY}")
    assert full.status.startswith("200") and full.body == V0
    before = len(moto.requests(KEY))
    unsatisfiable = run_wsgi(app, f"/{KEY}", {"Range": f"bytes={SIZE}-"})
    assert unsatisfiable.status.startswith("416")
    assert unsatisfiable.header("Content-Range") == f"bytes */{SIZE}"
    etag = single.header("ETag") or ""
    unchanged = run_wsgi(app, f"/{KEY}", {"If-None-Match": etag})
    assert unchanged.status.startswith("304") and unchanged.body == b""
    assert moto.requests(KEY)[before:] == [("HEAD", 200)] * 2  # 416 and 304: no GET
    missing = run_wsgi(app, "/no/such/key", {"Range": "bytes=0-9"})
    assert missing.status.startswith("404")
    assert released(client, moto.server.port)


def replace_after_first_get(moto: Moto, client: Any, bucket: str, key: str) -> None:
    """Put a new version of the object as soon as the first GetObject has answered."""
    other = moto.client()
    done: list[bool] = []

    def replace(**kwargs: Any) -> None:
        if not done:
            done.append(True)
            other.put_object(Bucket=bucket, Key=key, Body=V1)

    client.meta.events.register("after-call.s3.GetObject", replace)


def test_replaced_between_parts_aborts(moto: Moto) -> None:
    client = moto.client()
    key = "swap.bin"
    client.put_object(Bucket=BUCKET, Key=key, Body=V0)
    expected = run_wsgi(s3_app(client), f"/{key}", {"Range": MULTI})
    replace_after_first_get(moto, client, BUCKET, key)
    outcome = run_wsgi(s3_app(client), f"/{key}", {"Range": MULTI})
    assert isinstance(outcome.error, SourceChanged), outcome.error
    whole = same_boundary(expected, outcome)
    assert outcome.sent_headers and whole.startswith(outcome.body) and outcome.body != whole
    assert V1[:100] not in outcome.body and V1[200000:200100] not in outcome.body
    # The replacement landed between the two GETs; the second one's IfMatch failed.
    assert moto.requests(key)[-4:] == [("HEAD", 200), ("GET", 206), ("PUT", 200), ("GET", 412)]
    assert released(client, moto.server.port)


def test_versioned_bucket_serves_one_version(moto: Moto) -> None:
    """With a version id every part names that version: a replacement changes nothing."""
    client = moto.client()
    client.put_object(Bucket="versioned", Key="v.bin", Body=V0)
    replace_after_first_get(moto, client, "versioned", "v.bin")
    outcome = run_wsgi(s3_app(client, "versioned"), "/v.bin", {"Range": MULTI})
    assert outcome.error is None and outcome.status.startswith("206")
    parts = parse_multipart(outcome.body, outcome.header("Content-Type") or "")
    assert [body for _, body in parts] == [V0[a:b + 1] for a, b in MULTI_SPANS]
    latest = client.get_object(Bucket="versioned", Key="v.bin", Range="bytes=0-9")
    assert latest["Body"].read() == V1[:10]  # the object was replaced meanwhile
    # Unpinned, the same replacement is caught by IfMatch instead.
    client.put_object(Bucket="versioned", Key="w.bin", Body=V0)
    other = moto.client()
    replace_after_first_get(moto, other, "versioned", "w.bin")
    unpinned = run_wsgi(s3_app(other, "versioned", pin_version=False), "/w.bin",
                        {"Range": MULTI})
    assert isinstance(unpinned.error, SourceChanged)
    assert released(client, moto.server.port) and released(other, moto.server.port)


def test_missing_objects(moto: Moto) -> None:
    client = moto.client()
    with pytest.raises(FileNotFoundError):
        S3Source(client, BUCKET, "absent.bin")
    with pytest.raises(FileNotFoundError):
        S3Source(client, "no-such-bucket", KEY)
    assert released(client, moto.server.port)


# -- the examples, over real sockets --


@pytest.mark.parametrize("example", ["s3_flask", "s3_django"])
def test_example(moto: Moto, example: str) -> None:
    port = free_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    server = start_server([sys.executable, str(ROOT / "examples" / f"{example}.py"),
                           "--bucket", BUCKET, "--endpoint-url", moto.url,
                           "--port", str(port)], port, env=env, cwd=moto.workdir,
                          log_path=moto.workdir / f"{example}.log")
    try:
        def request(headers: dict[str, str] | None = None, target: str = f"/files/{KEY}",
                    method: str = "GET") -> Any:
            with RawClient(port) as client:
                return client.request(target, headers, method)

        before = len(moto.requests(KEY))
        check_single(request({"Range": "bytes=1000-1999"}), V0, 1000, 1999)
        check_multi(request({"Range": MULTI}), V0, MULTI_SPANS, "video/mp4")
        check_full(request(), V0)
        check_416(request({"Range": f"bytes={SIZE + 5}-"}), V0)
        head = request(method="HEAD")
        assert head.status == 200 and head.header("Content-Length") == str(SIZE)
        assert head.header("Accept-Ranges") == "bytes" and head.header("ETag")
        assert request(target="/files/absent.mp4").status == 404
        gets = [status for method, status in moto.requests(KEY)[before:] if method == "GET"]
        assert gets == [206, 206, 206, 206, 200]  # one per part, one for the whole body
    finally:
        server.stop()


# -- a faulty S3 endpoint --

CASES: list[tuple[str, str, dict[str, Any], type[Exception] | None, bool]] = [
    ("ok", MULTI, {}, None, True),
    ("fail@1", "bytes=0-99", {}, UpstreamError, False),
    ("fail@2", MULTI, {}, UpstreamError, True),
    ("reset@1", "bytes=0-99", {}, ConnectionError, False),
    ("reset@2", MULTI, {}, ConnectionError, True),
    ("short@2", MULTI, {}, ConnectionError, True),
    ("stall@2", MULTI, {}, TimeoutError, True),
    ("hang@1", "bytes=0-99", {}, TimeoutError, False),
    ("ignore", "bytes=100-199,1000-1099", {}, None, True),
    ("ignore", "bytes=200000-200099", {"max_skip": 1000}, UpstreamError, False),
    ("shrunk", "bytes=-100", {}, SourceChanged, False),
    ("long", "bytes=0-99", {}, UpstreamError, False),
    ("wrong", "bytes=0-99", {}, UpstreamError, False),
    ("flip@2", MULTI, {}, SourceChanged, True),
    ("flip@2+deaf", MULTI, {}, SourceChanged, True),
    ("flip@1", "", {}, SourceChanged, False),
]


def faulty_client(upstream: Server) -> Any:
    config = Config(s3={"addressing_style": "path"}, connect_timeout=1, read_timeout=0.5,
                    retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client("s3", endpoint_url=upstream.url, **CREDENTIALS, config=config)


@pytest.mark.parametrize(("faults", "ranges", "options", "error", "partial"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_endpoint(upstream: Server, faults: str, ranges: str, options: dict[str, Any],
                      error: type[Exception] | None, partial: bool) -> None:
    client = faulty_client(upstream)
    token = f"{faults}.s3-{abs(hash((ranges, str(options))))}"
    headers = {"Range": ranges} if ranges else {}
    expected = run_wsgi(s3_app(client), f"/ok.{token}", headers)
    assert expected.error is None
    outcome = run_wsgi(s3_app(client, **options), f"/{token}", headers)
    check_outcome(outcome, expected, error, partial)
    assert released(client, upstream.port)


@pytest.mark.parametrize(("faults", "error"), [("missing", FileNotFoundError),
                                               ("down", UpstreamError),
                                               ("hanghead", TimeoutError)])
def test_construction_errors(upstream: Server, faults: str, error: type[Exception]) -> None:
    client = faulty_client(upstream)
    with pytest.raises(error) as raised:
        S3Source(client, BUCKET, f"{faults}.construct")
    if faults == "down":
        assert isinstance(raised.value, UpstreamError) and raised.value.status == 503
    assert released(client, upstream.port)
    refused = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", **CREDENTIALS,
                           config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ConnectionError):
        S3Source(refused, BUCKET, KEY)


def test_the_client_sees_an_error_or_a_cut(upstream: Server) -> None:
    client = faulty_client(upstream)
    with serve_wsgi(s3_app(client)) as port:
        first = fetch(port, "/reset@1.socket", {"Range": "bytes=0-99"})
        assert first.status == 0 or first.status >= 500
        later = fetch(port, "/flip@2.socket", {"Range": MULTI})
        assert later.status == 206 and not later.complete
        good = fetch(port, "/ok.socket", {"Range": MULTI})
        assert good.status == 206 and good.complete
        new = (later.header("Content-Type") or "").split("boundary=")[1]
        old = (good.header("Content-Type") or "").split("boundary=")[1]
        assert good.body.replace(old.encode(), new.encode()).startswith(later.body)
        assert fetch(port, "/missing.socket").status == 404
    assert released(client, upstream.port)



# -- an endpoint that redirects every request --

# Answers every request with S3's PermanentRedirect and no region: botocore then asks the
# bucket's region with a HeadBucket, redirected the same way, and so on.
REDIRECT_FOREVER = """
import http.server, sys
BODY = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code>'
        b'<Message>Use the other endpoint.</Message></Error>')
class Redirect(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        body = b"" if self.command == "HEAD" else BODY
        self.send_response(301)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_HEAD = answer
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Redirect).serve_forever()
"""


@pytest.fixture(scope="module")
def redirecting() -> Iterator[Server]:
    port = free_port()
    server = start_server([sys.executable, "-c", REDIRECT_FOREVER, str(port)], port)
    try:
        yield server
    finally:
        server.stop()


def at_depth(depth: int, call: Any) -> Any:
    """``call()`` made ``depth`` frames deeper: where Python's recursion limit strikes inside
    botocore depends on how deep the stack already is."""
    return at_depth(depth - 1, call) if depth else call()


def test_a_redirect_loop_is_an_upstream_error(redirecting: Server) -> None:
    client = boto3.client("s3", endpoint_url=redirecting.url, **CREDENTIALS,
                          config=Config(s3={"addressing_style": "path"},
                                        retries={"max_attempts": 1}))
    for depth in range(24):  # botocore's RecursionError escapes it at most of these depths
        with pytest.raises(UpstreamError):
            at_depth(depth, lambda: S3Source(client, BUCKET, KEY))
    with serve_wsgi(s3_app(client)) as port:
        answer = fetch(port, f"/{KEY}", {"Range": "bytes=0-9"})
    assert (answer.status, answer.body) == (502, b"")
    client.close()
