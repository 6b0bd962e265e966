"""Only stable bytes are ranged: content codings (RFC 9110 8.4, 8.8.1, 13.1.5).

A ``200`` with a ``Content-Encoding`` other than ``identity`` is ranged only when its bytes are
the same on every request: the app gives a strong ``ETag``, or the body is a file read from
disk (a precompressed ``.gz``, as nginx ``gzip_static`` and WhiteNoise serve it). Content
compressed as it is answered (Django's and Starlette's ``GZipMiddleware``) differs on every
request and carries at best a weak ``ETag``: it passes through as a ``200``, so that a resumed
download never splices two different streams. Checked in process (WSGI and ASGI) and end to
end with curl and wget over waitress, where the result must pass ``gzip -t``.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import serverapps
from server_configs.checks import call, check_multi, check_single
from server_configs.launch import FILE_ENV, launch, require, shared_dir, write_data
from support import Server, free_port

from rangewsgi import RangeMiddleware
from rangewsgi.decision import UNSTABLE_CODING

TEXT = serverapps.make_text()
GZIP = {"Accept-Encoding": "gzip"}


@pytest.fixture(scope="module")
def files() -> Iterator[tuple[Path, bytes]]:
    """The data file (named by ``$RANGEWSGI_TEST_FILE``) and its precompressed text copy."""
    workdir = shared_dir("rangewsgi-encoding-")
    try:
        path, _data = write_data(workdir, 1000)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(FILE_ENV, str(path))
            stored = gzip.compress(TEXT, mtime=0)
            text_gz = serverapps.sibling(".txt.gz")
            text_gz.write_bytes(stored)
            text_gz.chmod(0o644)
            yield path, stored
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def django_app(files: tuple[Path, bytes]) -> Any:
    return serverapps.make_django(True)


# --- compressed as it is answered: never ranged -----------------------------------------------

def test_django_gzip_page_is_not_ranged(django_app: Any,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rangewsgi")
    first = call(django_app, "/gzip-page", headers={**GZIP, "Range": "bytes=0-49999"})
    assert first.status == 200 and first.header("Content-Encoding") == "gzip"
    assert first.header("Accept-Ranges") is None and first.header("Content-Range") is None
    assert (first.header("ETag") or "").startswith("W/")
    assert gzip.decompress(first.body) == TEXT
    assert any(UNSTABLE_CODING in record.getMessage() for record in caplog.records)
    # Answers are different streams (a file name field of random length, 0-99 bytes: five
    # alike by chance once in 10**8): why a range of each must not be spliced.
    bodies = {first.body}
    for _ in range(4):
        again = call(django_app, "/gzip-page", headers=GZIP)
        assert again.header("Accept-Ranges") is None
        assert gzip.decompress(again.body) == TEXT
        bodies.add(again.body)
    assert len(bodies) > 1
    head = call(django_app, "/gzip-page", "HEAD", headers=GZIP)
    assert head.status == 200 and head.header("Accept-Ranges") is None


def test_weak_etag_still_gives_304(django_app: Any) -> None:
    # RFC 9110 13.1.2: If-None-Match uses the weak comparison.
    etag = call(django_app, "/gzip-page", headers=GZIP).header("ETag")
    assert etag is not None and etag.startswith("W/")
    resp = call(django_app, "/gzip-page", headers={**GZIP, "If-None-Match": etag,
                                                    "Range": "bytes=0-9"})
    assert resp.status == 304 and resp.body == b""


def test_uncompressed_answer_of_the_same_view_is_ranged(django_app: Any) -> None:
    # Without Accept-Encoding, Django sends the text with the view's strong ETag.
    resp = call(django_app, "/gzip-page", headers={"Range": "bytes=100-199"})
    check_single(resp, TEXT, 100, 199)


def coded_app(etag: str | None) -> Callable[..., Iterable[bytes]]:
    """Compresses per request (a different mtime each time), with a Content-Length."""
    count = iter(range(1, 1_000_000))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = gzip.compress(TEXT, mtime=next(count))
        headers = [("Content-Type", "text/plain"), ("Content-Encoding", "gzip"),
                   ("Content-Length", str(len(body)))]
        if etag is not None:
            headers.append(("ETag", etag))
        start_response("200 OK", headers)
        return [body]

    return app


@pytest.mark.parametrize("etag", [None, 'W/"v1"', "not-a-tag"])
def test_coded_without_strong_etag_passes_through(etag: str | None) -> None:
    app = RangeMiddleware(coded_app(etag))
    for headers in ({}, {"Range": "bytes=0-9"}, {"Range": "bytes=0-9,20-29"}):
        resp = call(app, "/", headers=headers)
        assert resp.status == 200 and resp.header("Accept-Ranges") is None, headers
        assert gzip.decompress(resp.body) == TEXT
    head = call(app, "/", "HEAD")
    assert head.status == 200 and head.header("Accept-Ranges") is None


@pytest.mark.parametrize("coding", ["identity", "", "Identity"])
def test_identity_is_no_coding(coding: str) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Encoding", coding),
                                  ("Content-Length", str(len(TEXT)))])
        return [TEXT]

    check_single(call(RangeMiddleware(app), "/", headers={"Range": "bytes=5-9"}), TEXT, 5, 9)


def test_coded_with_strong_etag_is_ranged() -> None:
    # The app vouches that the bytes are the same every time (RFC 9110 8.8.3: strong).
    body = gzip.compress(TEXT, mtime=0)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Encoding", "gzip"),
                                  ("Content-Length", str(len(body))), ("ETag", '"gz-1"')])
        return [body]

    resp = call(RangeMiddleware(app), "/", headers={"Range": "bytes=10-19"})
    check_single(resp, body, 10, 19)
    assert resp.header("Content-Encoding") == "gzip"


# --- a coded file from disk: ranged -----------------------------------------------------------

@pytest.mark.parametrize("query", ["", "?etag=weak"])
def test_precompressed_file_from_disk_is_ranged(files: tuple[Path, bytes], query: str) -> None:
    _path, stored = files
    app = RangeMiddleware(serverapps.precompressed_app)
    full = call(app, f"/text.gz{query}")
    assert full.status == 200 and full.body == stored
    assert full.header("Accept-Ranges") == "bytes"
    check_single(call(app, f"/text.gz{query}", headers={"Range": "bytes=0-49999"}),
                 stored, 0, 49_999)
    check_multi(call(app, f"/text.gz{query}", headers={"Range": "bytes=0-9,-10"}), stored,
                [(0, 9), (len(stored) - 10, len(stored) - 1)], "text/plain; charset=utf-8")
    if query:
        # 13.1.5: a weak tag never satisfies If-Range: the whole file.
        resp = call(app, f"/text.gz{query}", headers={"Range": "bytes=0-9",
                                                      "If-Range": 'W/"text"'})
        assert resp.status == 200 and resp.body == stored


def test_whitenoise_precompressed_file(tmp_path: Path) -> None:
    from whitenoise import WhiteNoise

    (tmp_path / "app.js").write_bytes(TEXT)
    stored = gzip.compress(TEXT, mtime=0)
    (tmp_path / "app.js.gz").write_bytes(stored)

    def not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("404 Not Found", [("Content-Length", "0")])
        return []

    app = RangeMiddleware(WhiteNoise(not_found, root=str(tmp_path), prefix="static/"))
    full = call(app, "/static/app.js", headers=GZIP)
    assert full.header("Content-Encoding") == "gzip" and full.body == stored
    assert full.header("Accept-Ranges") == "bytes"
    # WhiteNoise answers one range itself; several it ignores, and the middleware makes them.
    check_single(call(app, "/static/app.js", headers={**GZIP, "Range": "bytes=0-49999"}),
                 stored, 0, 49_999)
    spans = [(0, 9), (50_000, 50_099)]
    resp = call(app, "/static/app.js", headers={**GZIP, "Range": "bytes=0-9,50000-50099"})
    check_multi(resp, stored, spans, full.header("Content-Type") or "")


# --- ASGI: the same rule through the shared core ----------------------------------------------

def asgi_client(app: Any) -> Any:
    from starlette.testclient import TestClient

    from rangewsgi.asgi import RangeMiddleware as AsgiRangeMiddleware

    return TestClient(AsgiRangeMiddleware(app))


def raw_get(client: Any, headers: dict[str, str]) -> tuple[int, Any, bytes]:
    with client.stream("GET", "/", headers=headers) as resp:
        return resp.status_code, resp.headers, b"".join(resp.iter_raw())


def test_starlette_gzip_middleware_is_not_ranged() -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.responses import Response
    from starlette.routing import Route

    async def text(request: Any) -> Response:
        return Response(TEXT, media_type="text/plain")

    app = Starlette(routes=[Route("/", text)], middleware=[Middleware(GZipMiddleware)])
    with asgi_client(app) as client:
        status, headers, body = raw_get(client, {**GZIP, "Range": "bytes=0-49999"})
        assert status == 200 and headers["content-encoding"] == "gzip"
        assert "accept-ranges" not in headers and gzip.decompress(body) == TEXT
        # Uncompressed (no Accept-Encoding), the same response is ranged.
        status, headers, body = raw_get(client, {"Accept-Encoding": "identity",
                                                 "Range": "bytes=10-19"})
        assert status == 206 and body == TEXT[10:20]


def test_asgi_coded_with_strong_etag_is_ranged() -> None:
    stored = gzip.compress(TEXT, mtime=0)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/plain"), (b"content-encoding", b"gzip"),
            (b"content-length", str(len(stored)).encode()), (b"etag", b'"gz"')]})
        await send({"type": "http.response.body", "body": stored})

    client = asgi_client(app)  # no lifespan: the app is HTTP only
    status, _headers, body = raw_get(client, {"Range": "bytes=10-19"})
    assert status == 206 and body == stored[10:20]


# --- end to end: curl and wget resume over waitress -------------------------------------------

@pytest.fixture(scope="module")
def waitress(files: tuple[Path, bytes]) -> Iterator[Server]:
    path, _stored = files
    server = launch("waitress", free_port(), path.parent, path, "encoded")
    try:
        yield server
    finally:
        server.stop()


def run(cmd: list[str]) -> int:
    return subprocess.run(cmd, capture_output=True, timeout=60, check=False).returncode


def curl_resume(url: str, out: Path) -> None:
    """``curl -r 0-49999`` then ``curl -C -``, both asking for gzip (no decoding)."""
    require("curl")
    assert run(["curl", "-sS", "-H", "Accept-Encoding: gzip", "-r", "0-49999", "-o", str(out),
                url]) == 0
    # 33: "the server does not support byte ranges" once the first answer was whole.
    assert run(["curl", "-sS", "-H", "Accept-Encoding: gzip", "-C", "-", "-o", str(out),
                url]) in (0, 33)


def assert_whole_gzip(out: Path, expected: bytes) -> None:
    require("gzip")
    assert run(["gzip", "-t", str(out)]) == 0, f"{out.stat().st_size} bytes, not a valid gzip"
    assert gzip.decompress(out.read_bytes()) == expected


def test_curl_resume_of_django_gzip_page(waitress: Server, tmp_path: Path) -> None:
    # Once: curl -r 0-49999 then curl -C - spliced two streams; gzip -t: "crc error".
    out = tmp_path / "page.gz"
    curl_resume(f"{waitress.url}/django/gzip-page", out)
    assert_whole_gzip(out, TEXT)


def test_wget_resume_of_django_gzip_page_gets_no_part(waitress: Server, tmp_path: Path) -> None:
    """``wget -c`` asks for the rest (``Range: bytes=N-``); the answer is a whole 200, never a
    206 cut from another stream (once: a 206, and gzip -t said "crc error").

    What wget 1.21 then does with a 200 is its own: when the new stream is longer than the
    file, it skips the first N bytes of it and appends the rest, which splices two streams
    whatever the server does (nginx answers such a request with a 200 too).
    """
    require("wget")
    out = tmp_path / "page.gz"
    url = f"{waitress.url}/django/gzip-page"
    out.write_bytes(b"\x1f\x8b" + b"x" * 49_998)  # any partial file
    done = subprocess.run(["wget", "-S", "-c", "--header", "Accept-Encoding: gzip", "-O",
                           str(out), url], capture_output=True, text=True, timeout=60,
                          check=False)
    answer = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]
    assert answer and answer[0] == "HTTP/1.1 200 OK", done.stderr
    assert not any(line.lower().startswith(("content-range", "accept-ranges"))
                   for line in answer), answer


def test_curl_and_wget_resume_a_precompressed_file(waitress: Server, tmp_path: Path,
                                                   files: tuple[Path, bytes]) -> None:
    _path, stored = files
    url = f"{waitress.url}/static/text.gz"
    out = tmp_path / "curl.gz"
    curl_resume(url, out)
    assert out.read_bytes() == stored
    assert_whole_gzip(out, TEXT)
    require("wget")
    out = tmp_path / "wget.gz"
    out.write_bytes(stored[:50_000])
    assert run(["wget", "-q", "-c", "-O", str(out), url]) == 0
    assert out.read_bytes() == stored
