"""HEAD through the middleware, over real servers (RFC 9110 9.3.2, 8.6).

A ``HEAD`` the middleware does not answer itself is the app's answer, body included: the
server frames it as for the ``GET`` and drops the body, exactly as for the bare app. Once the
body was emptied here, and an app answering ``[b"hello world"]`` without Content-Length got
``Content-Length: 0`` on wsgiref (the GET: 11), chunked framing on waitress, no length on
Granian. A ``HEAD`` the middleware answers (a full 200 whose fields it completes, a 304)
carries the fields of the ``GET``.

``serverapps.head`` serves ``head_plain`` bare under ``/bare`` and wrapped under ``/wrapped``.
Each request goes on its own connection with ``Connection: close``, so that what a server
sends after a HEAD's header section (some send the body) is read and compared too.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_configs.launch import launch, shared_dir, write_data
from support import RawClient, RawResponse, Server, free_port

pytestmark = pytest.mark.network

HEAD_SERVERS = ["wsgiref", "waitress", "granian"]
PASSED_THROUGH = ["/hello", "/gen", "/tagged"]
# Fields that differ between any two answers.
VOLATILE = {"date"}


@pytest.fixture(scope="module")
def data_file() -> Iterator[Path]:
    workdir = shared_dir("rangewsgi-head-")
    try:
        yield write_data(workdir, 100_000)[0]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module", params=HEAD_SERVERS)
def server(request: pytest.FixtureRequest, data_file: Path) -> Iterator[Server]:
    name: str = request.param
    workdir = shared_dir(f"rangewsgi-head-{name}-")
    running = launch(name, free_port(), workdir, data_file, "head")
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def exchange(server: Server, method: str, path: str,
             headers: dict[str, str] | None = None) -> tuple[RawResponse, bytes]:
    """One request on its own connection; the answer, and every byte sent after it."""
    with RawClient(server.port) as client:
        resp = client.request(path, {**(headers or {}), "Connection": "close"}, method)
        rest = client.buf
        while chunk := client.sock.recv(1 << 16):
            rest += chunk
    return resp, rest


def fields(resp: RawResponse) -> tuple[int, list[tuple[str, str]]]:
    """The status and the header fields, in order, but for those that vary by the time."""
    return resp.status, [(k.lower(), v) for k, v in resp.headers if k.lower() not in VOLATILE]


@pytest.mark.parametrize("route", PASSED_THROUGH)
def test_head_passed_through_is_the_bare_apps(server: Server, route: str) -> None:
    bare, bare_rest = exchange(server, "HEAD", f"/bare{route}")
    wrapped, wrapped_rest = exchange(server, "HEAD", f"/wrapped{route}")
    assert fields(wrapped) == fields(bare)
    assert wrapped_rest == bare_rest  # the body the server sends after a HEAD, if it does
    # RFC 9110 8.6: a HEAD's Content-Length, when there is one, is the GET's length.
    get, _rest = exchange(server, "GET", f"/wrapped{route}")
    assert get.body == b"hello world"
    length = wrapped.header("Content-Length")
    assert length is None or int(length) == len(get.body), (length, get.headers)


def test_head_of_a_full_200_has_the_fields_of_the_get(server: Server, data_file: Path) -> None:
    get, _rest = exchange(server, "GET", "/wrapped/file")
    assert get.status == 200 and get.body == data_file.read_bytes()
    assert get.header("Accept-Ranges") == "bytes"
    head, rest = exchange(server, "HEAD", "/wrapped/file")
    assert fields(head) == fields(get)
    assert rest == b""  # the middleware's own HEAD answer has no content


def test_head_304_has_the_fields_of_the_get_304(server: Server) -> None:
    condition = {"If-None-Match": '"hello-1"'}
    get, _rest = exchange(server, "GET", "/wrapped/tagged", condition)
    head, rest = exchange(server, "HEAD", "/wrapped/tagged", condition)
    assert get.status == 304 and fields(head) == fields(get)
    assert rest == b""


def test_head_passed_through_keeps_the_apps_write_calls() -> None:
    """PEP 3333 ``write()``: on a pass-through HEAD the app's writes reach the server's
    ``write`` too (the server drops them), as without the middleware."""
    from typing import Any

    from rangewsgi import RangeMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"hello ")
        return [b"world"]

    for wrapped in (False, True):
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None, out: list[bytes] = written) -> Any:
            return out.append

        environ = {"REQUEST_METHOD": "HEAD", "PATH_INFO": "/", "SCRIPT_NAME": ""}
        result = (RangeMiddleware(app) if wrapped else app)(environ, start_response)
        assert written == [b"hello "] and list(result) == [b"world"], wrapped
