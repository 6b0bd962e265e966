"""The WSGI adapter: PEP 3333 in full, body sources, the server's file wrapper, memory."""

from __future__ import annotations

import io
import os
import sys
import tracemalloc
import wsgiref.util
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from inprocess import Tracker, call, environ_for, make_app, ranged

from rangewsgi import FileWrapper, RangeMiddleware
from rangewsgi.files import BoundedFile, TruncatedBody

DATA = bytes(range(256)) * 64  # 16 KiB
App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def test_head_is_never_ranged_but_advertises_ranges() -> None:
    # RFC 9110 14.2: Range is defined for GET only; 9.3.2: HEAD sends the GET header fields.
    result = ranged("list", DATA)({"Range": "bytes=0-1"}, method="HEAD")
    assert result.code == 200 and result.header("Content-Range") is None
    assert result.header("Accept-Ranges") == "bytes"
    assert result.header("Content-Length") == str(len(DATA))


@pytest.mark.parametrize("method", ["POST", "PUT", "get", "OPTIONS", "DELETE"])
def test_other_methods_pass_through_untouched(method: str) -> None:
    # 14.2: "MUST ignore a Range header field received with a request method that is
    # unrecognized or for which range handling is not defined".
    inner = make_app("list", DATA)
    bare = call(inner, method, {"Range": "bytes=0-1"})
    wrapped = call(RangeMiddleware(make_app("list", DATA)), method, {"Range": "bytes=0-1"})
    assert (wrapped.status, wrapped.headers, wrapped.body) == (bare.status, bare.headers,
                                                               bare.body)
    assert wrapped.header("Accept-Ranges") is None


def test_zero_length_body_is_a_200() -> None:
    for kind in ("list", "file_wrapper", "lazy_generator"):
        result = ranged(kind, b"")({"Range": "bytes=-5"})
        assert result.code == 200 and result.body == b""
        assert result.header("Content-Length") == "0"


def test_unknown_length_passes_through() -> None:
    result = ranged("generator", DATA, with_length=False)({"Range": "bytes=0-1"})
    assert result.code == 200 and result.body == DATA
    assert result.header("Accept-Ranges") is None


def test_file_body_without_content_length_gets_one() -> None:
    result = ranged("file_wrapper", DATA)()
    assert result.header("Content-Length") == str(len(DATA))
    assert result.header("Accept-Ranges") == "bytes" and result.body == DATA


class Untouchable(io.RawIOBase):
    """A wsgi.input that fails the test if anything reads it."""

    def readable(self) -> bool:
        raise AssertionError("wsgi.input was touched")

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("wsgi.input was touched")


def test_request_body_is_never_touched() -> None:
    environ = environ_for("GET", {"Range": "bytes=0-1"})
    environ["wsgi.input"] = Untouchable()
    result = call(RangeMiddleware(make_app("list", DATA)), environ=environ, validate=False)
    assert result.body == DATA[:2]


@pytest.mark.parametrize("kind", ["list", "generator", "lazy_generator", "file_wrapper",
                                  "raw_file", "write"])
@pytest.mark.parametrize("value", [None, "bytes=0-1", "bytes=5-6,100-200", "bytes=99999-"])
def test_inner_body_closed_exactly_once(kind: str, value: str | None) -> None:
    tracker = Tracker()
    app = RangeMiddleware(make_app(kind, DATA, tracker=tracker))
    call(app, "GET", {"Range": value} if value else {})
    assert tracker.closes == 1


def test_416_closes_the_inner_body_before_returning() -> None:
    tracker = Tracker()
    app = RangeMiddleware(make_app("generator", DATA, tracker=tracker))
    environ = environ_for("GET", {"Range": "bytes=99999-"})
    body = app(environ, lambda *a: None)  # type: ignore[arg-type, return-value]
    assert tracker.closes == 1
    assert b"".join(body) == b"416 Range Not Satisfiable\n"


@pytest.mark.parametrize("kind", ["list", "lazy_generator", "file_wrapper", "raw_file"])
def test_client_hang_up_closes_once(kind: str) -> None:
    tracker = Tracker()
    app = RangeMiddleware(make_app(kind, DATA, tracker=tracker, chunk_sizes=[100]),
                          use_file_wrapper=False)
    environ = environ_for("GET", {"Range": "bytes=10-5000,6000-9000"})
    body = app(environ, lambda *a: None)  # type: ignore[arg-type, return-value]
    next(iter(body))
    body.close()  # type: ignore[attr-defined]
    body.close()  # type: ignore[attr-defined]
    assert tracker.closes == 1


def test_error_before_start_response_propagates_and_closes() -> None:
    closed = []

    class Failing:
        def __iter__(self) -> Iterator[bytes]:
            raise RuntimeError("boom")
            yield b""

        def close(self) -> None:
            closed.append(1)

    def app(environ: Any, start_response: Any) -> Failing:
        return Failing()

    with pytest.raises(RuntimeError, match="boom"):
        call(RangeMiddleware(app), "GET", {"Range": "bytes=0-1"}, validate=False)
    assert closed == [1]


def test_error_inside_the_app_propagates_and_restores_the_file_wrapper() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "3")])
        raise ValueError("app failed")

    environ = environ_for("GET", {"Range": "bytes=0-1"})
    with pytest.raises(ValueError, match="app failed"):
        RangeMiddleware(app)(environ, lambda *a: None)  # type: ignore[arg-type]
    assert environ["wsgi.file_wrapper"] is wsgiref.util.FileWrapper


def test_error_mid_stream_propagates_and_closes_once() -> None:
    closed = []

    class Breaks:
        def __iter__(self) -> Iterator[bytes]:
            yield DATA[:100]
            raise OSError("disk gone")

        def close(self) -> None:
            closed.append(1)

    def app(environ: Any, start_response: Any) -> Breaks:
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(DATA)))])
        return Breaks()

    with pytest.raises(OSError, match="disk gone"):
        call(RangeMiddleware(app), "GET", {"Range": "bytes=50-5000"})
    assert closed == [1]


def test_exc_info_replacement_before_return_is_not_ranged() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "100")])
        try:
            raise KeyError("x")
        except KeyError:
            start_response("500 Internal Server Error",
                           [("Content-Type", "text/plain"), ("Content-Length", "5")],
                           sys.exc_info())
        return [b"error"]

    result = call(RangeMiddleware(app), "GET", {"Range": "bytes=0-1"})
    assert result.status == "500 Internal Server Error" and result.body == b"error"


def test_exc_info_after_headers_sent_reraises() -> None:
    # PEP 3333: start_response with exc_info after headers were sent must re-raise.
    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", str(len(DATA)))])
        yield DATA[:1000]
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    sent: list[bytes] = []

    def server_start(status: str, headers: Any, exc_info: Any = None) -> Any:
        if exc_info and sent:
            raise exc_info[1].with_traceback(exc_info[2])
        return sent.append

    body = RangeMiddleware(app)(environ_for("GET", {"Range": "bytes=0-5000"}), server_start)
    with pytest.raises(KeyError, match="late"):
        for chunk in body:
            sent.append(chunk)
    assert b"".join(sent) == DATA[:1000]


def test_write_callable_bytes_count_as_body() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                          ("Content-Length", str(len(DATA)))])
        write(DATA[:3000])
        write(b"")
        write(DATA[3000:9000])
        return [DATA[9000:]]

    for value, expected in [("bytes=2990-3010", DATA[2990:3011]), ("bytes=-10", DATA[-10:]),
                            ("bytes=0-0", DATA[:1])]:
        result = call(RangeMiddleware(app), "GET", {"Range": value})
        assert result.code == 206 and result.body == expected


def test_file_wrapper_is_offered_and_restored() -> None:
    seen: list[Any] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(environ.get("wsgi.file_wrapper"))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "1")])
        return [b"x"]

    for wrapper in (wsgiref.util.FileWrapper, None):
        for method, headers in (("GET", {"Range": "bytes=0-0"}), ("GET", {}), ("HEAD", {})):
            environ = environ_for(method, headers, file_wrapper=wrapper)
            call(RangeMiddleware(app), environ=environ)
            assert issubclass(seen[-1], FileWrapper)
            assert environ.get("wsgi.file_wrapper") is wrapper
            assert ("wsgi.file_wrapper" in environ) is (wrapper is not None)
    # Methods the middleware leaves alone see the server's own wrapper.
    environ = environ_for("POST")
    call(RangeMiddleware(app), environ=environ)
    assert seen[-1] is wsgiref.util.FileWrapper


def file_app(path: Path, headers: list[tuple[str, str]] | None = None,
             skip: int = 0) -> App:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", headers or [("Content-Type", "video/mp4")])
        f = open(path, "rb")  # noqa: SIM115
        f.read(skip)
        return environ["wsgi.file_wrapper"](f, 8192)

    return app


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return path


def gunicorn_environ(headers: dict[str, str], version: str = "23.0.0") -> dict[str, Any]:
    """What gunicorn's sync worker puts in the environ that decides zero-copy."""
    environ = environ_for("GET", headers, file_wrapper=GunicornFileWrapper)
    environ["SERVER_SOFTWARE"] = f"gunicorn/{version}"
    return environ


def test_single_range_goes_back_to_the_servers_wrapper(data_file: Path) -> None:
    environ = gunicorn_environ({"Range": "bytes=100-199"})
    middleware = RangeMiddleware(file_app(data_file), file_wrapper_min_size=100)
    body = middleware(environ, lambda *a: None)  # type: ignore[arg-type]
    assert type(body) is GunicornFileWrapper
    bounded = body.filelike
    assert isinstance(bounded, BoundedFile)
    assert os.lseek(bounded.fileno(), 0, os.SEEK_CUR) == 100  # sendfile starts here
    assert b"".join(body) == DATA[100:200]
    body.close()
    assert bounded.closed


@pytest.mark.parametrize(("version", "first", "last", "zero_copy"), [
    ("20.1.0", 100, 199, False),  # sends from byte 0 whatever the offset (gunicorn #2669)
    ("20.1.0", 0, 199, True),  # a window that starts at byte 0 is what it sends
    ("21.2.0", 100, 199, True),
])
def test_old_gunicorn_gets_no_window_it_would_send_wrong(
        data_file: Path, version: str, first: int, last: int, zero_copy: bool) -> None:
    environ = gunicorn_environ({"Range": f"bytes={first}-{last}"}, version)
    middleware = RangeMiddleware(file_app(data_file), file_wrapper_min_size=100)
    body = middleware(environ, lambda *a: None)  # type: ignore[arg-type]
    assert (type(body) is GunicornFileWrapper) is zero_copy
    assert b"".join(body) == DATA[first:last + 1]
    body.close()  # type: ignore[attr-defined]


def test_unknown_servers_never_get_a_window(data_file: Path) -> None:
    # wsgiref's wrapper reads to the end of the file, ignoring Content-Length: not proven.
    environ = environ_for("GET", {"Range": "bytes=100-199"})
    middleware = RangeMiddleware(file_app(data_file), file_wrapper_min_size=0)
    body = middleware(environ, lambda *a: None)  # type: ignore[arg-type]
    assert type(body) is not wsgiref.util.FileWrapper
    assert b"".join(body) == DATA[100:200]
    body.close()  # type: ignore[attr-defined]


def test_ranges_below_the_size_threshold_are_read_directly(data_file: Path) -> None:
    # The default threshold is 32 KiB: a 100-byte range is cheaper to read than to sendfile.
    environ = environ_for("GET", {"Range": "bytes=100-199"})
    body = RangeMiddleware(file_app(data_file))(environ, lambda *a: None)  # type: ignore[arg-type]
    assert type(body) is not wsgiref.util.FileWrapper
    assert b"".join(body) == DATA[100:200]
    body.close()  # type: ignore[attr-defined]
    environ = environ_for("GET", {"Range": "bytes=-99"})
    middleware = RangeMiddleware(file_app(data_file), file_wrapper_min_size=100)
    body = middleware(environ, lambda *a: None)  # type: ignore[arg-type]
    assert type(body) is not wsgiref.util.FileWrapper
    assert b"".join(body) == DATA[-99:]
    body.close()  # type: ignore[attr-defined]


def test_pass_through_file_keeps_the_servers_wrapper(data_file: Path) -> None:
    environ = gunicorn_environ({"Range": "bytes=100-199", "If-Range": '"stale"'})
    middleware = RangeMiddleware(file_app(data_file), file_wrapper_min_size=0)
    body = middleware(environ, lambda *a: None)  # type: ignore[arg-type]
    assert type(body) is GunicornFileWrapper
    assert b"".join(body) == DATA
    body.close()


@pytest.mark.parametrize(("extra", "use_file_wrapper"), [
    ({"uwsgi.version": b"2.0.31"}, True),  # uWSGI sends a wrapped file from byte 0
    ({}, False),
])
def test_servers_that_ignore_offsets_get_an_iterated_range(
        data_file: Path, extra: dict[str, Any], use_file_wrapper: bool) -> None:
    environ = environ_for("GET", {"Range": "bytes=100-199"})
    environ.update(extra)
    middleware = RangeMiddleware(file_app(data_file), use_file_wrapper=use_file_wrapper)
    body = middleware(environ, lambda *a: None)  # type: ignore[arg-type]
    assert type(body) is not wsgiref.util.FileWrapper
    assert b"".join(body) == DATA[100:200]
    body.close()  # type: ignore[attr-defined]


def test_file_position_is_where_the_representation_starts(data_file: Path) -> None:
    app = RangeMiddleware(file_app(data_file, skip=1000))
    result = call(app, "GET", {"Range": "bytes=0-9,-5"})
    assert result.code == 206 and b"Content-Range: bytes 0-9/" + str(len(DATA) - 1000).encode() \
        in result.body
    assert DATA[1000:1010] in result.body and result.body.count(DATA[-5:]) == 1


def test_file_shorter_than_its_content_length_passes_through(data_file: Path) -> None:
    app = RangeMiddleware(file_app(data_file, [("Content-Length", str(len(DATA) + 10))]))
    environ = environ_for("GET", {"Range": "bytes=0-1"})
    body = app(environ, lambda *a: None)  # type: ignore[arg-type]
    assert type(body) is wsgiref.util.FileWrapper  # untouched: the app's own answer
    body.close()


def test_file_truncated_after_its_length_was_taken_aborts(data_file: Path) -> None:
    app = RangeMiddleware(file_app(data_file), use_file_wrapper=False)
    environ = environ_for("GET", {"Range": "bytes=0-9,8000-"})
    body = app(environ, lambda *a: None)  # type: ignore[arg-type]
    os.truncate(data_file, 8100)
    with pytest.raises(TruncatedBody):
        b"".join(body)
    body.close()  # type: ignore[attr-defined]


def test_seekable_objects_without_fileno(tmp_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "db.sqlite")
    conn.execute("create table media (data blob)")
    conn.execute("insert into media values (?)", (DATA,))
    conn.commit()

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        blob = conn.blobopen("media", "data", 1, readonly=True)
        return environ["wsgi.file_wrapper"](blob, 1000)

    result = call(RangeMiddleware(app), "GET", {"Range": "bytes=-300"})
    assert result.code == 206 and result.body == DATA[-300:]
    assert result.header("Content-Range") == f"bytes {len(DATA) - 300}-{len(DATA) - 1}/{len(DATA)}"
    conn.close()


def test_ten_gib_generator_suffix_range_streams_in_constant_memory() -> None:
    block = b"\xab" * (1 << 20)
    blocks = 10 * 1024  # 10 GiB

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", str(blocks * len(block)))])
        for _ in range(blocks):
            yield block

    tracemalloc.start()
    try:
        result = call(RangeMiddleware(app), "GET", {"Range": "bytes=-100"}, validate=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.body == b"\xab" * 100
    size = 10 * 2**30
    assert result.header("Content-Range") == f"bytes {size - 100}-{size - 1}/{size}"
    assert peak < 256 * 1024, f"peak traced memory {peak} bytes"


def test_ten_gib_sparse_file_suffix_range_reads_only_the_range(tmp_path: Path) -> None:
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(10 * 2**30 - 4)
        f.seek(0, os.SEEK_END)
        f.write(b"tail")
    result = call(RangeMiddleware(file_app(path)), "GET", {"Range": "bytes=-8"})
    assert result.body == b"\0\0\0\0tail"


def test_stacked_middleware_is_idempotent(data_file: Path) -> None:
    for value in ("bytes=0-1", "bytes=-10,0-5", "bytes=999999-", "items=1-2"):
        once = call(RangeMiddleware(file_app(data_file)), "GET", {"Range": value})
        twice = call(RangeMiddleware(RangeMiddleware(file_app(data_file))), "GET",
                     {"Range": value})
        assert once.status == twice.status
        if (once.header("Content-Type") or "").startswith("multipart/"):
            continue  # boundaries are random
        assert once.body == twice.body and once.headers == twice.headers


# --- PEP 3333 towards the app, in full -------------------------------------------------------


class CloseCounter:
    """A lazy (generator-like) body that calls start_response on first iteration."""

    def __init__(self, start_response: Any, chunks: list[bytes], raises: bool = False) -> None:
        self.start_response = start_response
        self.chunks = chunks
        self.closes = 0
        self.raises = raises
        self.started = False

    def __iter__(self) -> CloseCounter:
        return self

    def __next__(self) -> bytes:
        if not self.started:
            self.started = True
            self.start_response("200 OK", [("Content-Type", "text/plain"),
                                           ("Content-Length", str(sum(map(len, self.chunks))))])
        if not self.chunks:
            raise StopIteration
        return self.chunks.pop(0)

    def close(self) -> None:
        self.closes += 1
        if self.raises:
            raise RuntimeError("close failed")


@pytest.mark.parametrize("value", [None, "bytes=0-0", "bytes=5-"])
def test_lazy_empty_body_is_closed_once(value: str | None) -> None:
    # The primed iterator and the result are the same object: once closed twice.
    bodies: list[CloseCounter] = []

    def app(environ: Any, start_response: Any) -> CloseCounter:
        bodies.append(CloseCounter(start_response, []))
        return bodies[-1]

    result = call(RangeMiddleware(app), "GET", {"Range": value} if value else {})
    assert result.body == b""
    assert bodies[0].closes == 1


def test_416_whose_close_raises_is_closed_once() -> None:
    """The app's body is closed unread before the 416 is returned; its error waits for the
    server's close() (PEP 3333), so the 416 still goes out (tests/test_close_errors.py)."""
    bodies: list[CloseCounter] = []

    def app(environ: Any, start_response: Any) -> CloseCounter:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        bodies.append(CloseCounter(lambda *a: None, [b"abc"], raises=True))
        bodies[-1].started = True
        return bodies[-1]

    environ = environ_for("GET", {"Range": "bytes=10-"})
    result = RangeMiddleware(app)(environ, lambda *a: None)  # type: ignore[arg-type]
    assert bodies[0].closes == 1
    assert b"".join(result) == b"416 Range Not Satisfiable\n"
    with pytest.raises(RuntimeError, match="close failed"):
        result.close()  # type: ignore[attr-defined]
    result.close()  # type: ignore[attr-defined]  # raised once, closed once
    assert bodies[0].closes == 1


@pytest.mark.parametrize("value", [None, "bytes=0-0"])
def test_second_start_response_without_exc_info_raises(value: str | None) -> None:
    # PEP 3333: "it is a fatal error to call start_response without the exc_info argument
    # if start_response has already been called within the current invocation".
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        start_response("500 Oops", [("Content-Type", "text/plain")])
        return [b"abc"]

    environ = environ_for("GET", {"Range": value} if value else {})
    with pytest.raises(RuntimeError, match="start_response"):
        RangeMiddleware(app)(environ, lambda *a: None)  # type: ignore[arg-type]


def test_offered_wrapper_uses_the_block_size() -> None:
    reads: list[int] = []

    class Recording(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        wrapper = environ["wsgi.file_wrapper"]
        sized = wrapper(Recording(DATA), 1000)
        assert sized.blksize == 1000  # the app's own block size wins
        return wrapper(Recording(DATA))  # none given: the middleware's block_size

    result = call(RangeMiddleware(app, block_size=3000, file_validators=False), "GET",
                  {"If-Range": '"stale"', "Range": "bytes=0-0"}, validate=False)
    assert result.body == DATA
    assert reads and max(reads) == 3000


def test_offered_wrapper_seeks_for_range_aware_apps(tmp_path: Path) -> None:
    """Werkzeug's send_file(conditional=True) answers ranges itself: with the offered
    wrapper it seeks to the range instead of reading from byte 0, and what it iterates and
    closes is the file itself (no server wrapper: cheroot, the Werkzeug server)."""
    from werkzeug.wrappers import Request as WerkzeugRequest
    from werkzeug.wsgi import wrap_file

    path = tmp_path / "big.bin"
    size = 20 * 1024 * 1024
    with open(path, "wb") as out:
        out.truncate(size)
        out.seek(size - 100)
        out.write(DATA[:100])
    opened: list[Any] = []
    reads: list[int] = []

    class Counting(io.FileIO):
        def read(self, size: int = -1) -> bytes:
            data = super().read(size)
            reads.append(len(data))
            return data

    def app(environ: Any, start_response: Any) -> Any:
        from werkzeug.wrappers import Response

        opened.append(Counting(path, "rb"))
        response = Response(wrap_file(environ, opened[-1]), direct_passthrough=True,
                            mimetype="application/octet-stream")
        response.make_conditional(WerkzeugRequest(environ), accept_ranges=True,
                                  complete_length=size)
        return response(environ, start_response)

    result = call(RangeMiddleware(app), "GET", {"Range": "bytes=-100"},
                  environ=environ_for("GET", {"Range": "bytes=-100"}, file_wrapper=None),
                  validate=False)
    assert result.code == 206 and result.body == DATA[:100]
    assert sum(reads) == 100  # once: the whole 20 MiB read and dropped
    assert opened[0].closed  # once: the file of every such 206 left open


@pytest.mark.parametrize("value", ["items", "none, bytes", "none", "", "bytes;q=1"])
def test_accept_ranges_without_bytes_is_untouched(value: str) -> None:
    # RFC 9110 14.3: the app says which units it accepts; no "bytes", no byte ranges.
    inner = make_app("list", DATA, headers=[("Content-Type", "text/plain"),
                                            ("Accept-Ranges", value)])
    bare = call(inner, "GET", {"Range": "bytes=0-9"})
    wrapped = call(RangeMiddleware(inner), "GET", {"Range": "bytes=0-9"})
    assert (wrapped.status, wrapped.headers, wrapped.body) == (bare.status, bare.headers,
                                                               bare.body)


def test_accept_ranges_listing_bytes_is_ranged() -> None:
    inner = make_app("list", DATA, headers=[("Content-Type", "text/plain"),
                                            ("Accept-Ranges", "Bytes , other")])
    result = call(RangeMiddleware(inner), "GET", {"Range": "bytes=0-9"})
    assert result.code == 206 and result.body == DATA[:10]


@pytest.mark.parametrize("kind", ["list", "lazy_generator", "file_wrapper", "raw_file"])
@pytest.mark.parametrize("value", [None, "bytes=0-9"])
def test_head_answers_carry_no_content_and_close_the_body_unread(kind: str,
                                                                  value: str | None) -> None:
    # RFC 9110 9.3.2; waitress sends whatever body an app returns for HEAD.
    tracker = Tracker()
    app = RangeMiddleware(make_app(kind, DATA, tracker=tracker))
    result = call(app, "HEAD", {"Range": value} if value else {})
    assert result.code == 200 and result.body == b""
    assert result.header("Content-Length") == str(len(DATA))
    assert tracker.closes == 1


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"predicate": 42}, TypeError, "predicate must be a callable"),
    ({"max_ranges": "10"}, TypeError, "max_ranges must be an int, not str"),
    ({"max_ranges": True}, TypeError, "max_ranges must be an int, not bool"),
    ({"block_size": 1.5}, TypeError, "block_size must be an int"),
    ({"use_file_wrapper": "no"}, TypeError, "use_file_wrapper must be True or False"),
    ({"conditional": 1}, TypeError, "conditional must be True or False"),
    ({"file_validators": None}, TypeError, "file_validators must be True or False"),
    ({"file_wrapper_min_size": -1}, ValueError, "file_wrapper_min_size must not be negative"),
])
def test_options_are_checked_when_made(options: dict[str, Any], error: type[Exception],
                                       message: str) -> None:
    with pytest.raises(error, match=message):
        RangeMiddleware(make_app("list", DATA), **options)


def test_app_must_be_callable() -> None:
    with pytest.raises(TypeError, match="WSGI application"):
        RangeMiddleware("myapp:app")  # type: ignore[arg-type]


def test_log_lines_carry_a_short_prefix_of_request_fields(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="rangewsgi")
    attack = "bytes=" + "0-0," * 2048
    call(RangeMiddleware(make_app("list", DATA)), "GET", {"Range": attack})
    call(RangeMiddleware(make_app("list", DATA)),
         environ=environ_for("GET", {"Range": "bytes=0-0"}, path="/" + "p" * 8000))
    lines = [r.getMessage() for r in caplog.records if r.name == "rangewsgi"]
    assert len(lines) == 2
    assert all(len(line) < 300 for line in lines), [len(line) for line in lines]
    assert "(8198 chars)" in lines[0] and "(8001 chars)" in lines[1]
