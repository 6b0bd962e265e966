"""rangewsgi stacked with the middleware users put around it, in-process and PEP 3333 validated.

- WhiteNoise under and over it: WhiteNoise answers Range for its files itself; those answers
  pass through untouched.
- werkzeug ``SharedDataMiddleware`` answers 200 only: with rangewsgi over it, it gains ranges.
- werkzeug ``ProxyFix`` on either side changes nothing.
- A compressing middleware: when it streams without a length, the answer is untouched; when it
  sets the Content-Length of the gzipped bytes, ranges apply to the encoded bytes
  (RFC 9110 8.4.1, 14.1.2: byte ranges are over the selected representation's encoded data).
- Two RangeMiddleware stacked answer as one.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from server_configs.checks import (
    call,
    cases,
    check_full,
    check_multi,
    check_single,
    with_etag,
)
from server_configs.launch import data_file_in_env
from serverapps import StartResponse, plain_app
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.middleware.shared_data import SharedDataMiddleware
from whitenoise import WhiteNoise

from rangewsgi import RangeMiddleware

SIZE = 200_003
CASES = cases(SIZE)
STATIC = "/static/data.bin"


@pytest.fixture(scope="module")
def data_file() -> Iterator[tuple[Path, bytes]]:
    with data_file_in_env("rangewsgi-stacks-", SIZE) as made:
        yield made


def etag_of(app: Any, route: str) -> str:
    resp = call(app, route, "HEAD")
    tag = resp.header("ETag") or resp.header("Last-Modified")
    assert tag is not None
    return tag


def run_case(app: Any, route: str, case: str, data: bytes) -> None:
    method, headers, check = CASES[case]
    check(call(app, route, method, with_etag(headers, etag_of(app, route))), data)


# --- WhiteNoise -------------------------------------------------------------------------------

WN_RANGES = ["bytes=100-199", "bytes=-777", "bytes=150000-", f"bytes={SIZE}-", "bytes=0-0",
             "bytes=5-4"]


def whitenoise(app: Any, path: Path) -> Any:
    return WhiteNoise(app, root=str(path.parent), prefix="static/")


@pytest.mark.parametrize("range_value", WN_RANGES)
@pytest.mark.parametrize("order", ["under", "over"])
def test_whitenoise_answers_pass_untouched(data_file: tuple[Path, bytes], order: str,
                                           range_value: str) -> None:
    """What WhiteNoise answers for its files is what the client gets, byte for byte."""
    path, _data = data_file
    bare = whitenoise(plain_app, path)
    if order == "under":  # RangeMiddleware(WhiteNoise(app))
        stacked = RangeMiddleware(whitenoise(plain_app, path))
    else:  # WhiteNoise(RangeMiddleware(app)): static files never reach rangewsgi
        stacked = whitenoise(RangeMiddleware(plain_app), path)
    headers = {"Range": range_value}
    # WhiteNoise's 416 has no Content-Type, which wsgiref.validate rejects: not validated.
    expected = call(bare, STATIC, headers=headers, validate=False)
    got = call(stacked, STATIC, headers=headers, validate=False)
    assert expected.status in (206, 416)  # WhiteNoise ranged (or refused) it itself
    assert (got.status, got.headers, got.body) == (expected.status, expected.headers,
                                                    expected.body)


def test_whitenoise_single_range_bytes(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    app = RangeMiddleware(whitenoise(plain_app, path))
    check_single(call(app, STATIC, headers={"Range": "bytes=100-199"}), data, 100, 199)


def test_whitenoise_multi_range_gets_multipart(data_file: tuple[Path, bytes]) -> None:
    """WhiteNoise ignores a multi-range request (200); rangewsgi under it then answers it."""
    path, data = data_file
    headers = {"Range": "bytes=0-9,-5"}
    assert call(whitenoise(plain_app, path), STATIC, headers=headers).status == 200
    check_multi(call(RangeMiddleware(whitenoise(plain_app, path)), STATIC, headers=headers),
                data, [(0, 9), (SIZE - 5, SIZE - 1)])


@pytest.mark.parametrize("case", list(CASES))
def test_app_behind_whitenoise(data_file: tuple[Path, bytes], case: str) -> None:
    """Requests WhiteNoise does not serve reach the ranged application unchanged."""
    path, data = data_file
    run_case(whitenoise(RangeMiddleware(plain_app), path), "/file", case, data)


# --- werkzeug SharedDataMiddleware and ProxyFix -----------------------------------------------

def shared_data(path: Path) -> Any:
    return SharedDataMiddleware(plain_app, {"/static": str(path.parent)})


def test_shared_data_alone_answers_200(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    check_full(call(shared_data(path), STATIC, headers={"Range": "bytes=100-199"}), data)


@pytest.mark.parametrize("case", list(CASES))
def test_shared_data_gains_ranges(data_file: tuple[Path, bytes], case: str) -> None:
    path, data = data_file
    run_case(RangeMiddleware(shared_data(path)), STATIC, case, data)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("order", ["under", "over"])
def test_proxy_fix(data_file: tuple[Path, bytes], order: str, case: str) -> None:
    data = data_file[1]
    app = (RangeMiddleware(ProxyFix(plain_app, x_for=1, x_proto=1)) if order == "under"
           else ProxyFix(RangeMiddleware(plain_app), x_for=1, x_proto=1))
    run_case(app, "/file", case, data)


# --- a compressing middleware -----------------------------------------------------------------

class Gzip:
    """gzip Content-Encoding for clients that accept it.

    With ``known_length`` the whole body is compressed first and sent with the Content-Length
    of the gzipped bytes (and a distinct strong ETag: another representation, RFC 9110 8.8.3);
    without it the compressed body is streamed with no length.
    """

    def __init__(self, app: Any, known_length: bool) -> None:
        self.app = app
        self.known_length = known_length

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if "gzip" not in environ.get("HTTP_ACCEPT_ENCODING", ""):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = self.app(environ, capture)
        try:
            chunks = list(body) if self.known_length else None
        finally:
            if chunks is not None and hasattr(body, "close"):
                body.close()
        headers = [(k, v) for k, v in captured["headers"]
                   if k.lower() not in ("content-length", "etag")]
        headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        if chunks is not None:
            encoded = gzip.compress(b"".join(chunks), mtime=0)
            headers += [("Content-Length", str(len(encoded))), ("ETag", '"gzipped"')]
            start_response(captured["status"], headers)
            return [encoded]
        start_response(captured["status"], headers)
        return self._stream(body)

    @staticmethod
    def _stream(body: Iterable[bytes]) -> Iterator[bytes]:
        comp = zlib.compressobj(wbits=31)
        try:
            for chunk in body:
                if out := comp.compress(chunk):
                    yield out
            yield comp.flush()
        finally:
            if hasattr(body, "close"):
                body.close()


ACCEPT_GZIP = {"Accept-Encoding": "gzip"}


@pytest.mark.parametrize("route", ["/file", "/gen", "/list"])
def test_gzip_without_length_is_untouched(data_file: tuple[Path, bytes], route: str) -> None:
    data = data_file[1]
    app = RangeMiddleware(Gzip(plain_app, known_length=False))
    resp = call(app, route, headers={**ACCEPT_GZIP, "Range": "bytes=100-199"})
    assert resp.status == 200
    assert resp.header("Content-Range") is None
    assert resp.header("Content-Length") is None
    assert resp.header("Accept-Ranges") is None  # nothing to range: not advertised
    assert gzip.decompress(resp.body) == data


@pytest.mark.parametrize("route", ["/file", "/gen", "/list"])
def test_gzip_with_length_ranges_encoded_bytes(data_file: tuple[Path, bytes],
                                               route: str) -> None:
    data = data_file[1]
    app = RangeMiddleware(Gzip(plain_app, known_length=True))
    full = call(app, route, headers=ACCEPT_GZIP)
    assert full.status == 200 and full.header("Content-Encoding") == "gzip"
    encoded = full.body
    assert gzip.decompress(encoded) == data
    n = len(encoded)
    resp = call(app, route, headers={**ACCEPT_GZIP, "Range": "bytes=100-199"})
    check_single(resp, encoded, 100, 199)
    assert resp.header("Content-Encoding") == "gzip"
    check_single(call(app, route, headers={**ACCEPT_GZIP, "Range": "bytes=-10"}),
                 encoded, n - 10, n - 1)  # the gzip trailer: CRC32 and length
    check_multi(call(app, route, headers={**ACCEPT_GZIP, "Range": "bytes=0-1,-4"}), encoded,
                [(0, 1), (n - 4, n - 1)])
    # Reassembled from ranges, the encoded bytes decode to the source.
    halves = [call(app, route, headers={**ACCEPT_GZIP, "Range": r}).body
              for r in (f"bytes=0-{n // 2}", f"bytes={n // 2 + 1}-")]
    assert gzip.decompress(b"".join(halves)) == data
    # The identity representation is ranged over its own bytes.
    check_single(call(app, route, headers={"Range": "bytes=100-199"}), data, 100, 199)


# --- RangeMiddleware twice --------------------------------------------------------------------

@pytest.mark.parametrize("route", ["/file", "/gen", "/list"])
@pytest.mark.parametrize("case", list(CASES))
def test_stacked_twice_is_idempotent(data_file: tuple[Path, bytes], route: str,
                                     case: str) -> None:
    data = data_file[1]
    once = RangeMiddleware(plain_app)
    twice = RangeMiddleware(RangeMiddleware(plain_app))
    run_case(twice, route, case, data)
    method, headers, _check = CASES[case]
    headers = with_etag(headers, etag_of(once, route))
    one, two = call(once, route, method, headers), call(twice, route, method, headers)
    assert two.status == one.status
    if case != "multi":  # multipart boundaries differ per answer; parts are checked above
        assert two.body == one.body
        assert sorted(two.headers) == sorted(one.headers)
