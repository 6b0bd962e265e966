"""An application whose body's ``close()`` raises: the answer goes out, the error comes once.

PEP 3333: the server calls the ``close()`` of the iterable the application returns, once, when
the response is done; an error it raises is the server's to handle (logged; the bytes already
written stay written). Without the middleware that is where an app's ``close()`` error lands.
With it, the middleware closes the app's body itself whenever it answers without reading it
(``416``, ``412``, ``304``, ``HEAD``) or once it has read every byte it needs (a ``206``); the
error must then wait for the server's ``close()`` of the middleware's iterable and be raised
there, exactly once, and never turn a complete ``416`` or ``206`` into a ``500``.

The WSGI application the real servers load is ``served_app`` in this module.
"""

from __future__ import annotations

import io
import json
import os
import random
import threading
import time
import wsgiref.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import inprocess
import pytest
from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from server_configs.launch import launch
from support import RawClient, RawResponse, Server, free_port, parse_multipart

from rangewsgi import RangeMiddleware

SIZE = 100_000
ETAG = '"v1"'
MARKER = "rangewsgi-test close failed"
FILE_ENV = "RANGEWSGI_TEST_FILE"  # as server_configs.launch sets it
StartResponse = Callable[..., Any]


def make_data() -> bytes:
    return random.Random(17).randbytes(SIZE)


# --- bodies whose close() raises, counted ------------------------------------------------------

_lock = threading.Lock()
_counts = {"bodies": 0, "closes": 0}


def _next_body() -> int:
    """A number for a new body; its close() error names it, so a log can be counted."""
    with _lock:
        _counts["bodies"] += 1
        return _counts["bodies"]


def _closed() -> None:
    with _lock:
        _counts["closes"] += 1


class RaisingBody:
    """An iterable body (not a list: no length to take from it) whose close() raises."""

    def __init__(self, chunks: list[bytes], lazy: StartResponse | None = None,
                 headers: list[tuple[str, str]] | None = None) -> None:
        self.chunks = chunks
        self.lazy = lazy  # start_response to call on first iteration, as a generator does
        self.headers = headers or []
        self.number = _next_body()
        self.closes = 0

    def __iter__(self) -> Iterator[bytes]:
        if self.lazy is not None:
            self.lazy("200 OK", self.headers)
        return iter(self.chunks)

    def close(self) -> None:
        self.closes += 1
        _closed()
        raise RuntimeError(f"{MARKER} <{self.number}>")


class RaisingFile(io.FileIO):
    """A real file whose close() closes it and then raises (once: later calls are quiet)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rb")
        self.number = _next_body()
        self.closes = 0

    def close(self) -> None:
        if self.closed:
            return
        self.closes += 1
        _closed()
        super().close()
        raise RuntimeError(f"{MARKER} <{self.number}>")


def headers_for(length: int) -> list[tuple[str, str]]:
    return [("Content-Type", "application/octet-stream"), ("Content-Length", str(length)),
            ("ETag", ETAG)]


def raising_app(path: Path, made: list[Any] | None = None) -> Any:
    """``/iterable``, ``/lazy`` and ``/file``: the bytes of ``path``, each body's close()
    raises; ``/stats``: how many bodies were made and closed (JSON)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Any:
        route = environ.get("PATH_INFO", "")
        if route == "/stats":
            with _lock:
                stats = json.dumps(_counts).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(stats)))])
            return [stats]
        data = path.read_bytes()
        body: Any
        if route == "/file":
            start_response("200 OK", headers_for(len(data)))
            body = RaisingFile(path)
            if made is not None:
                made.append(body)
            return environ["wsgi.file_wrapper"](body, 8192)
        chunks = [data[i:i + 8192] for i in range(0, len(data), 8192)]
        if route == "/lazy":
            body = RaisingBody(chunks, start_response, headers_for(len(data)))
        else:
            start_response("200 OK", headers_for(len(data)))
            body = RaisingBody(chunks)
        if made is not None:
            made.append(body)
        return body

    return app


class _LazyServedApp:
    """The middleware over ``raising_app``, and under ``/bare`` the app alone for reference;
    built on first use (the file comes from the environment of the server process)."""

    def __init__(self) -> None:
        self.bare: Any = None
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        if self.app is None:
            self.bare = raising_app(Path(os.environ[FILE_ENV]))
            self.app = RangeMiddleware(self.bare)
        path = environ.get("PATH_INFO", "")
        if path.startswith("/bare/"):
            environ["PATH_INFO"] = path.removeprefix("/bare")
            return self.bare(environ, start_response)
        return self.app(environ, start_response)


served_app = _LazyServedApp()


# --- in process --------------------------------------------------------------------------------

@dataclass
class Served:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    errors: list[Exception] = field(default_factory=list)  # raised by the server's close()

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None


def serve(app: Any, environ: dict[str, Any], closes: int = 1) -> Served:
    """What a server does: call, iterate (an error here fails the test), then close();
    ``closes=2`` shows that a second close() of the middleware's iterable raises nothing
    more."""
    got: dict[str, Any] = {}
    out: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], object]:
        got["status"], got["headers"] = status, headers
        return out.append

    result = app(environ, start_response)
    errors: list[Exception] = []
    try:
        for chunk in result:
            out.append(chunk)
    finally:
        for _ in range(closes):
            try:
                result.close()
            except RuntimeError as exc:
                errors.append(exc)
    return Served(got["status"], got["headers"], b"".join(out), errors)


# (name, method, request headers): answers the middleware writes itself, or slices.
ANSWERS = [
    ("416", "GET", {"Range": f"bytes={SIZE}-"}),
    ("412", "GET", {"If-Match": '"other"'}),
    ("304", "GET", {"If-None-Match": ETAG}),
    ("head", "HEAD", {}),
    ("206", "GET", {"Range": "bytes=100-199"}),
    ("206-multipart", "GET", {"Range": "bytes=0-9,5000-5009"}),
]


def check_answer(name: str, got: Served | RawResponse, data: bytes) -> None:
    """The status, fields and bytes of each answer in ``ANSWERS``."""
    status = got.status if isinstance(got, Served) else f"{got.status} {got.reason}"
    body = got.body
    if name == "416":
        assert status == "416 Range Not Satisfiable"
        assert got.header("Content-Range") == f"bytes */{SIZE}"
        assert body == b"416 Range Not Satisfiable\n"
    elif name == "412":
        assert status == "412 Precondition Failed"
        assert body == b"412 Precondition Failed\n"
    elif name == "304":
        assert status == "304 Not Modified"
        assert got.header("ETag") == ETAG
        assert body == b""
    elif name == "head":
        assert status == "200 OK"
        assert got.header("Content-Length") == str(SIZE)
        assert got.header("Accept-Ranges") == "bytes"
        assert body == b""
    elif name == "206":
        assert status == "206 Partial Content"
        assert got.header("Content-Range") == f"bytes 100-199/{SIZE}"
        assert body == data[100:200]
    else:
        assert status == "206 Partial Content"
        parts = parse_multipart(body, got.header("Content-Type") or "")
        assert [part for _, part in parts] == [data[0:10], data[5000:5010]]
        assert got.header("Content-Length") == str(len(body))


def environ_for(method: str, headers: dict[str, str], path: str,
                file_wrapper: Any = wsgiref.util.FileWrapper) -> dict[str, Any]:
    """What wsgiref's server passes (``inprocess.environ_for``), with a ``QUERY_STRING``."""
    environ = inprocess.environ_for(method, headers, path, file_wrapper)
    environ["QUERY_STRING"] = ""
    return environ


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(make_data())
    return path


@pytest.mark.parametrize("route", ["/iterable", "/lazy", "/file"])
@pytest.mark.parametrize(("name", "method", "headers"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_answer_goes_out_and_close_error_is_raised_once_at_close(
        data_file: Path, route: str, name: str, method: str,
        headers: dict[str, str]) -> None:
    made: list[Any] = []
    inner = raising_app(data_file, made)
    # PEP 3333 checked on the middleware's side, and on the app's for /iterable (around a
    # file the validator would hide it; around /lazy, it iterates before the middleware).
    app = validator(RangeMiddleware(validator(inner) if route == "/iterable" else inner))
    got = serve(app, environ_for(method, headers, path=route), closes=2)
    check_answer(name, got, make_data())
    assert [str(exc) for exc in got.errors] == [f"{MARKER} <{made[0].number}>"]
    assert made[0].closes == 1


@pytest.mark.parametrize("route", ["/iterable", "/file"])
def test_bare_app_raises_at_close_too(data_file: Path, route: str) -> None:
    """The reference: without the middleware the error comes from the server's close()."""
    made: list[Any] = []
    got = serve(validator(raising_app(data_file, made)), environ_for("GET", {}, path=route))
    assert got.status == "200 OK" and got.body == make_data()
    assert [str(exc) for exc in got.errors] == [f"{MARKER} <{made[0].number}>"]


@pytest.mark.parametrize("route", ["/iterable", "/lazy", "/file"])
def test_full_200_raises_at_close(data_file: Path, route: str) -> None:
    made: list[Any] = []
    app = validator(RangeMiddleware(raising_app(data_file, made)))
    got = serve(app, environ_for("GET", {}, path=route))
    assert got.status == "200 OK" and got.body == make_data()
    assert got.header("Accept-Ranges") == "bytes"
    assert len(got.errors) == 1 and made[0].closes == 1


def test_window_through_the_server_wrapper_raises_at_close(data_file: Path) -> None:
    """A window handed to the server's wrapper (gunicorn) is closed by the server."""
    made: list[Any] = []
    environ = environ_for("GET", {"Range": "bytes=0-49999"}, path="/file",
                          file_wrapper=GunicornFileWrapper)
    environ["SERVER_SOFTWARE"] = "gunicorn/23.0.0"
    app: Any = RangeMiddleware(raising_app(data_file, made))
    result = app(environ, lambda *a: None)
    assert type(result) is GunicornFileWrapper
    assert b"".join(result) == make_data()[:50_000]
    with pytest.raises(RuntimeError, match=MARKER):
        result.close()
    result.close()
    assert made[0].closes == 1


def test_client_gone_before_the_body_is_read(data_file: Path) -> None:
    """The server closes without iterating (client gone): the error comes from close()."""
    made: list[Any] = []
    app: Any = RangeMiddleware(raising_app(data_file, made))
    for headers in ({"Range": "bytes=100-199"}, {"Range": f"bytes={SIZE}-"}):
        result: Any = app(environ_for("GET", headers, path="/iterable"), lambda *a: None)
        with pytest.raises(RuntimeError, match=MARKER):
            result.close()
        result.close()
    assert [body.closes for body in made] == [1, 1]


# --- over real servers -------------------------------------------------------------------------

# waitress writes the headers of a response with no body only after the body's close(): a
# close() that raises there gets a 500, with or without the middleware. The 304 and HEAD are
# checked on wsgiref, which sends the headers first.
SERVER_ANSWERS = {
    "wsgiref": [a[0] for a in ANSWERS],
    "waitress": ["416", "412", "206", "206-multipart"],
}


def stats(server: Server) -> dict[str, int]:
    with RawClient(server.port, timeout=10) as client:
        resp = client.request("/stats", {"Connection": "close"})
    assert resp.status == 200, resp
    counts: dict[str, int] = json.loads(resp.body)
    return counts


def settled(server: Server, count: int, timeout: float = 10.0) -> tuple[dict[str, int], str]:
    """Counts and log once ``count`` bodies are closed and each error is in the log (bounded
    wait: a server closes and logs after the client has the response)."""
    deadline = time.monotonic() + timeout
    while True:
        now, log = stats(server), server.log()
        done = now["closes"] >= count and all(f"{MARKER} <{number}>" in log
                                              for number in range(1, count + 1))
        if done or time.monotonic() > deadline:
            return now, log
        time.sleep(0.05)


@pytest.mark.parametrize("server_name", list(SERVER_ANSWERS))
def test_close_error_over_a_real_server(tmp_path: Path, data_file: Path,
                                        server_name: str) -> None:
    data = make_data()
    server = launch(server_name, free_port(), tmp_path, data_file,
                    app="test_close_errors:served_app")
    try:
        # The reference: body <1>, the app alone, whose close() error the server reports as
        # it does (wsgiref: twice, its handle_error and then socketserver's).
        with RawClient(server.port, timeout=10) as client:
            resp = client.request("/bare/iterable", {"Connection": "close"})
        assert resp.status == 200 and resp.body == data
        sent = 1
        for route in ("/iterable", "/lazy", "/file"):
            for name, method, headers in ANSWERS:
                if name not in SERVER_ANSWERS[server_name]:
                    continue
                with RawClient(server.port, timeout=10) as client:
                    resp = client.request(route, {**headers, "Connection": "close"}, method)
                sent += 1
                check_answer(name, resp, data)
        after, log = settled(server, sent)
    finally:
        server.stop()
    assert after == {"bodies": sent, "closes": sent}, after
    # Each body's error was raised once, by the server's close(), which reported it as it
    # reports the bare app's.
    reported = log.count(f"{MARKER} <1>")
    assert reported >= 1, log[-3000:]
    for number in range(2, sent + 1):
        assert log.count(f"{MARKER} <{number}>") == reported, (number, log[-3000:])
