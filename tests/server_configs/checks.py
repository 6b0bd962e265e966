"""Byte-exact checks of range answers, shared by the server, framework and stack tests.

Every check compares the body with the slice of the source bytes it claims to carry.
``CASES`` are the requests every (server, body) and (framework, route) pair is put through.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from wsgiref.util import FileWrapper
from wsgiref.validate import validator

from support import RawResponse, parse_multipart
from werkzeug.test import Client


def from_werkzeug(resp: Any) -> RawResponse:
    """A ``werkzeug.test.TestResponse`` as a ``RawResponse`` (body read, response closed)."""
    try:
        body = resp.get_data()
    finally:
        resp.close()
    return RawResponse(resp.status_code, resp.status.partition(" ")[2],
                       list(resp.headers.items()), body)


def call(app: Any, route: str, method: str = "GET", headers: dict[str, str] | None = None,
         validate: bool = True) -> RawResponse:
    """One request in-process, PEP 3333 validated on both sides (``wsgiref.validate``), with
    a server-style ``wsgi.file_wrapper`` in the environ."""
    client = Client(validator(app) if validate else app)
    resp = client.open(route, method=method, headers=headers or {},
                       environ_overrides={"wsgi.file_wrapper": FileWrapper})
    return from_werkzeug(resp)


def check_single(resp: RawResponse, data: bytes, first: int, last: int) -> None:
    """One range: 206, Content-Range, exactly those bytes (RFC 9110 14.4, 15.3.7.1)."""
    assert resp.status == 206, (resp.status, resp.headers)
    assert resp.header("Content-Range") == f"bytes {first}-{last}/{len(data)}"
    assert resp.header("Content-Length") == str(last - first + 1)
    assert resp.body == data[first:last + 1]


def check_multi(resp: RawResponse, data: bytes, spans: list[tuple[int, int]],
                part_type: str = "application/octet-stream") -> None:
    """multipart/byteranges, one part per range in request order (RFC 9110 14.6, 15.3.7.2)."""
    assert resp.status == 206, (resp.status, resp.headers)
    ctype = resp.header("Content-Type") or ""
    assert ctype.startswith("multipart/byteranges"), ctype
    assert resp.header("Content-Range") is None
    assert resp.header("Content-Length") == str(len(resp.body))
    parts = parse_multipart(resp.body, ctype)
    assert len(parts) == len(spans)
    for (fields, body), (first, last) in zip(parts, spans, strict=True):
        assert fields["content-range"] == f"bytes {first}-{last}/{len(data)}"
        assert fields["content-type"] == part_type
        assert body == data[first:last + 1]


def check_full(resp: RawResponse, data: bytes) -> None:
    assert resp.status == 200, (resp.status, resp.headers)
    assert resp.header("Content-Range") is None
    assert resp.body == data


def check_416(resp: RawResponse, data: bytes) -> None:
    """RFC 9110 15.5.17: no satisfiable range -> 416 with Content-Range: bytes */length."""
    assert resp.status == 416, (resp.status, resp.headers)
    assert resp.header("Content-Range") == f"bytes */{len(data)}"
    assert len(resp.body) == int(resp.header("Content-Length") or 0)


def check_head(resp: RawResponse, data: bytes) -> None:
    """RFC 9110 14.2: Range applies to GET only; HEAD is answered like a GET without Range."""
    assert resp.status == 200, (resp.status, resp.headers)
    assert resp.header("Content-Range") is None
    assert resp.header("Accept-Ranges") == "bytes"
    assert resp.header("Content-Length") in (None, str(len(data)))
    # Dropping the body of a HEAD answer is the server's part (Django and the in-process
    # client leave it to the server), so the body is not checked here.


def check_advertised(resp: RawResponse, data: bytes) -> None:
    check_full(resp, data)
    assert resp.header("Accept-Ranges") == "bytes"  # RFC 9110 14.3


Check = Callable[[RawResponse, bytes], None]
# (method, request headers, check); "ETAG" in a header value is replaced by the entity tag.
Case = tuple[str, dict[str, str], Check]


def cases(n: int) -> dict[str, Case]:
    """The requests every body is put through, for a representation of ``n`` bytes."""
    return {
        "single": ("GET", {"Range": "bytes=100-199"},
                   lambda r, d: check_single(r, d, 100, 199)),
        "open-ended": ("GET", {"Range": f"bytes={n - 50_003}-"},
                       lambda r, d: check_single(r, d, n - 50_003, n - 1)),
        "suffix": ("GET", {"Range": "bytes=-777"},
                   lambda r, d: check_single(r, d, n - 777, n - 1)),
        "multi": ("GET", {"Range": "bytes=0-9, 70000-140000,-5"},
                  lambda r, d: check_multi(r, d, [(0, 9), (70000, 140000), (n - 5, n - 1)])),
        "unsatisfiable": ("GET", {"Range": f"bytes={n}-"}, check_416),
        # RFC 9110 13.1.5: a matching strong entity tag lets the Range apply ...
        "if-range-true": ("GET", {"Range": "bytes=5000-5099", "If-Range": "ETAG"},
                          lambda r, d: check_single(r, d, 5000, 5099)),
        # ... and any other validator means the whole representation, 200.
        "if-range-false": ("GET", {"Range": "bytes=5000-5099", "If-Range": '"stale"'},
                           check_full),
        "head": ("HEAD", {"Range": "bytes=0-9"}, check_head),
        "no-range": ("GET", {}, check_advertised),
    }


def with_etag(headers: dict[str, str], etag: str) -> dict[str, str]:
    return {k: etag if v == "ETAG" else v for k, v in headers.items()}


# strace's line for one call: sendfile(out_fd, in_fd, [offset] => [offset after], count) = sent
_SENDFILE = re.compile(
    r"sendfile(?:64)?\((\d+), (\d+), \[(\d+)\](?: => \[\d+\])?, (\d+)\) = (\d+)")


def sendfile_calls(trace: str) -> list[tuple[int, int, int]]:
    """(offset, count, bytes sent) of every sendfile call in an strace output."""
    return [(int(m[3]), int(m[4]), int(m[5])) for m in _SENDFILE.finditer(trace)]
