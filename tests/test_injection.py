"""Header injection: nothing from the request, and no control character from the application's
Content-Type, reaches a response header or a multipart part header.

RFC 9110 section 5.5: a field value is field-vchar, SP and HTAB; CR, LF and NUL are never
allowed. The only request data the middleware turns into headers are numbers (Content-Range,
Content-Length); the only application data it copies into the multipart body is the
Content-Type of each part (15.3.7.2), which must therefore be checked before it is copied.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_configs.launch import launch, write_data
from support import HOST, RawClient, Server, free_port, parse_multipart
from wsgi_exchange import (
    CONTENT_RANGE,
    FIELD_CHARS,
    Headers,
    Served,
    StartResponse,
    data_for,
    environ_for,
    serve,
)

from rangewsgi import RangeMiddleware

MARKER = "Evil-Marker"
HOSTILE_RANGES = [
    f"bytes=0-1\r\n{MARKER}: 1",
    f"bytes=0-1\r\n\r\n{MARKER}",
    f"bytes=0-1\n{MARKER}: 1",
    f"bytes=0-1\r{MARKER}: 1",
    f"bytes=0-1,\r\n{MARKER}: 1",
    f"bytes=0-1\x00{MARKER}",
    f'bytes="0-1"{MARKER}',
    f'"bytes=0-1"\r\n{MARKER}',
    f"{MARKER}=0-1",
    f"bytes=0-1, 2-3\r\n{MARKER}: 1",
    "bytes=0-1" + f"\r\n{MARKER}: x" * 5000,
    "bytes=" + "\r\n" * 10_000 + "0-1",
    f"bytes=0-{'9' * 5000}\r\n{MARKER}: 1",
    f"bytes=\xe9\xff-1\r\n{MARKER}: 1",
]
HOSTILE_IF_RANGE = [
    f'"v1"\r\n{MARKER}: 1',
    f'"v1\r\n{MARKER}: 1"',
    f"Sun, 13 Sep 2020 12:26:40 GMT\r\n{MARKER}: 1",
    f'W/"v1"\n{MARKER}',
    '"' * 10_000,
    f"\x00\r\n{MARKER}" * 1000,
]


def plain_app(headers: Headers, data: bytes) -> Any:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [*headers, ("Content-Length", str(len(data)))])
        return [data]
    return app


def assert_no_injection(served: Served) -> None:
    for name, value in served.headers:
        assert re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name), name  # 5.1 token
        assert all(ord(c) in FIELD_CHARS for c in value), (name, value)
        assert MARKER.lower() not in (name + value).lower(), (name, value)
    assert MARKER.encode() not in served.body


@pytest.mark.parametrize("range_value", HOSTILE_RANGES)
@pytest.mark.parametrize("if_range", [None, *HOSTILE_IF_RANGE])
def test_request_values_never_reach_headers(range_value: str, if_range: str | None) -> None:
    data = data_for(300)
    app = RangeMiddleware(plain_app([("Content-Type", "text/plain"), ("ETag", '"v1"'),
                                     ("Last-Modified", "Sun, 13 Sep 2020 12:26:40 GMT")],
                                    data))
    served = serve(app, environ_for("GET", range_value, if_range))
    assert_no_injection(served)
    assert served.code in (200, 206, 416)
    if served.code == 200:
        assert served.body == data
    elif served.code == 206 and served.header("Content-Range") is not None:
        match = CONTENT_RANGE.fullmatch(served.header("Content-Range") or "")
        assert match is not None
        first, last, total = (int(g) for g in match.groups())
        assert total == 300 and served.body == data[first:last + 1]


UNSAFE_TYPES = [
    "text/plain\r\nX-Injected: 1",
    "text/plain\r\n\r\nfake body",
    "text/plain\nContent-Range: bytes 0-0/1",
    "text/plain\rX",
    "text/plain\x00",
    "text/plain\x1b[31m",
    "text/plain\x7f",
    "text/plain\x0b",
]
SAFE_TYPES = ["text/plain; charset=utf-8", "video/mp4", "a/b; x=\"\xe9\"", "t/\tx"]


@pytest.mark.parametrize("body_kind", ["list", "file"])
@pytest.mark.parametrize("content_type", UNSAFE_TYPES + SAFE_TYPES)
def test_part_headers_cannot_be_forged(content_type: str, body_kind: str,
                                       tmp_path: Path) -> None:
    """15.3.7.2: each part carries Content-Type (when it is a valid field value) and
    Content-Range, and nothing else, whatever the application's Content-Type holds."""
    data = data_for(2000)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    headers = [("Content-Type", content_type), ("Content-Length", str(len(data)))]

    def app(environ: dict[str, Any], start_response: StartResponse) -> Any:
        start_response("200 OK", headers)
        if body_kind == "file":
            return environ["wsgi.file_wrapper"](open(path, "rb"), 512)
        return [data[:700], data[700:]]

    served = serve(RangeMiddleware(app), environ_for("GET", "bytes=1500-1599,0-99,-50"))
    assert served.code == 206
    top = served.header("Content-Type") or ""
    boundary = re.fullmatch(r"multipart/byteranges; boundary=([0-9a-f]{32})", top)
    assert boundary is not None, top
    safe = all(ord(c) in FIELD_CHARS for c in content_type)
    delimiter = b"--" + boundary[1].encode()
    assert served.body.count(delimiter) == 4  # three parts and the close delimiter
    spans = [(1500, 1600), (0, 100), (1950, 2000)]
    if body_kind == "list":
        spans.sort()  # a stream is sliced in ascending order
    parts = parse_multipart(served.body, top)
    assert [p for _, p in parts] == [data[a:b] for a, b in spans]
    for (fields, _), (a, b) in zip(parts, spans, strict=True):
        expected = {"content-range": f"bytes {a}-{b - 1}/2000"}
        if safe:
            expected["content-type"] = content_type.strip()
        assert fields == expected
    # Every part header line is one of the two fields, and each head has exactly them.
    heads = re.findall(rb"--" + boundary[1].encode() + rb"\r\n(.*?)\r\n\r\n", served.body,
                       re.DOTALL)
    assert len(heads) == 3
    for head in heads:
        lines = head.split(b"\r\n")
        assert [line.split(b":")[0] for line in lines] == (
            [b"Content-Type", b"Content-Range"] if safe else [b"Content-Range"])
        assert all(b"\r" not in line and b"\n" not in line for line in lines)


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, bytes]]:
    workdir = tmp_path_factory.mktemp("injection")
    path, data = write_data(workdir, 40_000)
    server = launch("gunicorn-gthread", free_port(), workdir, path)
    try:
        yield server, data
    finally:
        server.stop()


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw request bytes; read until the server closes (bounded by the timeout)."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


@pytest.mark.network
@pytest.mark.parametrize("value", [
    f'bytes="0-1"{MARKER}', f"bytes=0-1 {MARKER}", "bytes=0-1," + "9" * 4000,
    f"bytes=\xe9{MARKER}", f"{MARKER}=0-1", 'bytes=0-1,"2-3"', "bytes=0-1;" + "x" * 6000,
])
def test_hostile_values_over_gunicorn(gunicorn_server: tuple[Server, bytes],
                                      value: str) -> None:
    server, data = gunicorn_server
    with RawClient(server.port) as client:
        for route in ("/file", "/gen"):
            resp = client.request(route, {"Range": value, "If-Range": f'"x{MARKER}"'})
            assert resp.status == 200, value  # an invalid ranges-specifier is ignored (14.2)
            assert resp.body == data
            for name, header in resp.headers:
                assert MARKER.lower() not in (name + header).lower()
        client.assert_idle()


@pytest.mark.network
def test_obs_fold_and_bare_cr_over_gunicorn(gunicorn_server: tuple[Server, bytes]) -> None:
    """Folded or CR-split Range lines never smuggle a header into the response."""
    server, data = gunicorn_server
    for trick in (f"Range: bytes=0-1\r\n {MARKER}: 1\r\n",
                  f"Range: bytes=0-1\r{MARKER}: 1\r\n",
                  f"Range: bytes=0-1\r\n\t{MARKER}\r\n"):
        raw = raw_exchange(server.port, (
            f"GET /file HTTP/1.1\r\nHost: {HOST}\r\n{trick}Connection: close\r\n\r\n"
        ).encode("latin-1"))
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 "), raw[:200]
        assert MARKER.encode().lower() not in head.lower()
        status = int(head.split()[1])
        assert status in (200, 206, 400)  # the server may reject the request outright
        if status == 206:
            assert body == data[:2]
        elif status == 200:
            assert body == data
