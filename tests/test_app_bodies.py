"""Bodies real apps return, through the middleware: correct bytes or untouched, never a 500.

A length is trusted only from a source that measures the bytes the body yields (a plain
file's ``fstat``, or a cheap ``seek``/``tell``); every body the middleware sends stops at the
length it announced, and a body that ends early aborts the response.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import mmap
import os
import socket
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from inprocess import Result, call, environ_for
from serverapps import OverReturning

from rangewsgi import RangeMiddleware
from rangewsgi.files import TruncatedBody

DATA = bytes((i * 7 + i // 251) % 256 for i in range(102_400))
App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def body_app(make_body: Callable[[dict[str, Any]], Any],
             headers: list[tuple[str, str]] | None = None) -> App:
    """An app that answers 200 with whatever ``make_body(environ)`` returns."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  *(headers or [])])
        return make_body(environ)  # type: ignore[no-any-return]

    return app


def wrapped(file: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda environ: environ["wsgi.file_wrapper"](file, 4096)


def check(result: Result, data: bytes, value: str | None) -> None:
    """Either a correct 206 of ``data`` for ``value``, or the whole of ``data`` untouched;
    a Content-Length, when there is one, is the body's length."""
    length = result.header("Content-Length")
    if length is not None:
        assert int(length) == len(result.body)
    if result.code == 200:
        assert result.body == data
        return
    assert result.code == 206 and value is not None, result.status
    first, _, last = value.removeprefix("bytes=").partition("-")
    start = len(data) - int(last) if first == "" else int(first)
    stop = len(data) if first == "" or last == "" else int(last) + 1
    assert result.header("Content-Range") == f"bytes {start}-{stop - 1}/{len(data)}"
    assert result.body == data[start:stop]


VALUES = [None, "bytes=100-199", "bytes=-10", "bytes=50000-"]


def tar_member(tmp_path: Path) -> Any:
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("member.bin")
        info.size = len(DATA)
        tar.addfile(info, io.BytesIO(DATA))
    return tarfile.open(path).extractfile("member.bin")


def zip_member(tmp_path: Path, method: int) -> Any:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        archive.writestr("member.bin", DATA)
    return zipfile.ZipFile(path).open("member.bin")


def compressed(tmp_path: Path, opener: Callable[..., Any]) -> Any:
    path = tmp_path / "data.z"
    with opener(path, "wb") as out:
        out.write(DATA)
    return opener(path, "rb")


@pytest.mark.parametrize("value", VALUES)
def test_tarfile_member_is_measured_by_seeking(tmp_path: Path, value: str | None) -> None:
    # Its fileno() raises AttributeError: once a 500 on every Range request.
    result = call(RangeMiddleware(body_app(wrapped(tar_member(tmp_path)))), "GET",
                  {"Range": value} if value else {})
    check(result, DATA, value)
    assert result.header("Content-Length") == str(len(result.body))
    if value is not None:
        assert result.code == 206


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("value", VALUES)
def test_zipfile_member(tmp_path: Path, method: int, value: str | None) -> None:
    result = call(RangeMiddleware(body_app(wrapped(zip_member(tmp_path, method)))), "GET",
                  {"Range": value} if value else {})
    check(result, DATA, value)
    # With the app's own Content-Length the member is ranged by seeking in it.
    app = body_app(wrapped(zip_member(tmp_path, method)), [("Content-Length", str(len(DATA)))])
    result = call(RangeMiddleware(app), "GET", {"Range": value} if value else {})
    check(result, DATA, value)
    assert result.code == (206 if value else 200)


@pytest.mark.parametrize("opener", [gzip.open, bz2.open, lzma.open])
@pytest.mark.parametrize("value", VALUES)
def test_compressed_files_are_never_measured_by_their_descriptor(
        tmp_path: Path, opener: Callable[..., Any], value: str | None) -> None:
    # fstat of their fileno() measures the compressed file: once Content-Length: 741 on a
    # 102,400-byte body, and bytes=-10 answered with decompressed bytes 731-740.
    result = call(RangeMiddleware(body_app(wrapped(compressed(tmp_path, opener)))), "GET",
                  {"Range": value} if value else {})
    assert result.code == 200 and result.body == DATA
    assert result.header("Content-Length") is None  # unknown: passed through untouched
    # With the right Content-Length from the app, ranges work (by seeking the stream).
    app = body_app(wrapped(compressed(tmp_path, opener)), [("Content-Length", str(len(DATA)))])
    result = call(RangeMiddleware(app), "GET", {"Range": value} if value else {})
    check(result, DATA, value)
    assert result.code == (206 if value else 200)


def test_spooled_temporary_file_is_not_rolled_over() -> None:
    spooled = tempfile.SpooledTemporaryFile(max_size=len(DATA) * 2)  # noqa: SIM115
    spooled.write(DATA)
    spooled.seek(0)
    result = call(RangeMiddleware(body_app(wrapped(spooled))), "GET",
                  {"Range": "bytes=-10"})
    check(result, DATA, "bytes=-10")
    assert result.code == 206
    assert not spooled._rolled  # measured with seek/tell, not fileno()


@pytest.mark.parametrize("value", VALUES)
def test_bytesio_at_a_non_zero_position(value: str | None) -> None:
    def make(environ: dict[str, Any]) -> Any:
        buffer = io.BytesIO(b"skipped!" + DATA)
        buffer.seek(8)
        return environ["wsgi.file_wrapper"](buffer)

    result = call(RangeMiddleware(body_app(make)), "GET", {"Range": value} if value else {})
    check(result, DATA, value)
    assert result.code == (206 if value else 200)


@pytest.mark.parametrize("value", VALUES)
def test_mmap_body(tmp_path: Path, value: str | None) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    with open(path, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    result = call(RangeMiddleware(body_app(wrapped(mapped))), "GET",
                  {"Range": value} if value else {})
    check(result, DATA, value)
    assert result.code == (206 if value else 200)


def test_pipe_body_passes_through() -> None:
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as out:
            out.write(DATA)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        result = call(RangeMiddleware(body_app(wrapped(os.fdopen(read_fd, "rb")))), "GET",
                      {"Range": "bytes=0-9"})
    finally:
        writer.join(10)
    assert result.code == 200 and result.body == DATA
    assert result.header("Content-Length") is None


def test_socket_body_passes_through() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.sendall(DATA)
        right.shutdown(socket.SHUT_WR)
        reader = left.makefile("rb")
        result = call(RangeMiddleware(body_app(wrapped(reader))), "GET",
                      {"Range": "bytes=0-9"})
    assert result.code == 200 and result.body == DATA
    assert result.header("Content-Length") is None


@pytest.mark.parametrize("value", [None, "bytes=0-9"])
def test_procfs_file_is_not_measured(value: str | None) -> None:
    # st_size 0, real content follows: once "Content-Length: 0" with 1,414 bytes after it.
    path = "/proc/self/maps"
    result = call(RangeMiddleware(body_app(wrapped(open(path, "rb")))), "GET",  # noqa: SIM115
                  {"Range": value} if value else {})
    assert result.code == 200 and result.header("Content-Length") is None
    assert len(result.body) > 100 and b"\n" in result.body


def test_file_that_grows_mid_response_stops_at_the_announced_length(tmp_path: Path) -> None:
    # Once: 401,000 bytes under Content-Length: 400000 on wsgiref.
    path = tmp_path / "grows.bin"
    path.write_bytes(DATA * 4)
    app = RangeMiddleware(body_app(wrapped(open(path, "rb"))))  # noqa: SIM115
    sent: dict[str, Any] = {}
    body = app(environ_for("GET"), lambda s, h, e=None: sent.update(status=s, headers=h))
    try:
        chunks = iter(body)
        first = next(chunks)
        with open(path, "ab") as out:
            out.write(b"x" * 1000)
        rest = b"".join(chunks)
    finally:
        body.close()  # type: ignore[attr-defined]
    assert dict(sent["headers"])["Content-Length"] == str(len(DATA) * 4)
    assert first + rest == DATA * 4


def test_file_that_shrinks_mid_response_aborts(tmp_path: Path) -> None:
    path = tmp_path / "shrinks.bin"
    path.write_bytes(DATA * 4)
    app = RangeMiddleware(body_app(wrapped(open(path, "rb"))))  # noqa: SIM115
    body = app(environ_for("GET"), lambda *a: None)
    try:
        chunks = iter(body)
        next(chunks)
        os.truncate(path, 10_000)
        with pytest.raises(TruncatedBody):
            b"".join(chunks)
    finally:
        body.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["bytes=100-124", "bytes=0-0,200-224", "bytes=-25"])
def test_read_that_over_returns_never_passes_the_range(value: str) -> None:
    # Once: a 206 with Content-Length: 25 emitted 102,400 bytes before failing.
    for use_file_wrapper in (True, False):
        app = RangeMiddleware(body_app(wrapped(OverReturning(DATA))),
                              use_file_wrapper=use_file_wrapper, file_wrapper_min_size=0)
        result = call(app, "GET", {"Range": value})
        assert result.code == 206
        assert int(result.header("Content-Length") or -1) == len(result.body)
        if "," not in value:
            check(result, DATA, value)


class FilenoRaises(io.BytesIO):
    def __init__(self, data: bytes, error: type[BaseException]) -> None:
        super().__init__(data)
        self.error = error

    def fileno(self) -> int:
        raise self.error("no descriptor here")


@pytest.mark.parametrize("error", [AttributeError, OSError, RuntimeError, ValueError,
                                   io.UnsupportedOperation, LookupError])
@pytest.mark.parametrize("value", VALUES)
def test_fileno_that_raises_anything(error: type[BaseException], value: str | None) -> None:
    result = call(RangeMiddleware(body_app(wrapped(FilenoRaises(DATA, error)))), "GET",
                  {"Range": value} if value else {})
    check(result, DATA, value)
    assert result.code == (206 if value else 200)


class SeekableRaises:
    """A file-like object whose probing methods raise things no file would."""

    def __init__(self) -> None:
        self.inner = io.BytesIO(DATA)

    def read(self, size: int = -1) -> bytes:
        return self.inner.read(size)

    def seek(self, *args: int) -> int:
        return self.inner.seek(*args)

    def tell(self) -> int:
        raise KeyError("tell")

    def seekable(self) -> bool:
        raise RuntimeError("seekable")

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.inner.read(4096), b"")


def test_probing_a_body_that_raises_is_never_a_500() -> None:
    result = call(RangeMiddleware(body_app(lambda environ: SeekableRaises())), "GET",
                  {"Range": "bytes=0-9"})
    assert result.code == 200 and result.body == DATA


# --- what goes to a server's wsgi.file_wrapper (sendfile from the descriptor) -----------------

class ReadsItsOwnWay(io.FileIO):
    """A real file whose read() yields other bytes than its descriptor holds."""

    def read(self, size: int | None = -1) -> bytes:
        return bytes(b ^ 0xFF for b in super().read(size))


class ClosesLoudly(io.FileIO):
    """A real file that only adds to close(): it reads as FileIO does."""

    def close(self) -> None:
        super().close()


def gunicorn_call(app: App, headers: dict[str, str]) -> Any:
    from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper

    environ = environ_for("GET", headers, file_wrapper=GunicornFileWrapper)
    environ["SERVER_SOFTWARE"] = "gunicorn/23.0.0"
    return RangeMiddleware(app)(environ, lambda *a: None), GunicornFileWrapper


@pytest.mark.parametrize("value", [None, "bytes=40000-99999"])
@pytest.mark.parametrize("kind", ["gzip", "gzip-wrapped", "zip", "tar", "subclass", "procfs"])
def test_only_a_plain_file_goes_to_the_servers_wrapper(tmp_path: Path, kind: str,
                                                       value: str | None) -> None:
    # Once: BoundedFile(GzipFile) went to gunicorn, which sendfiled the compressed file
    # under the decompressed Content-Length.
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(b ^ 0xFF for b in DATA) if kind == "subclass" else DATA)
    expected = DATA
    length = [("Content-Length", str(len(DATA)))]
    if kind.startswith("gzip"):
        app = body_app(wrapped(compressed(tmp_path, gzip.open)) if kind == "gzip-wrapped"
                       else lambda environ: compressed(tmp_path, gzip.open), length)
    elif kind == "zip":
        app = body_app(wrapped(zip_member(tmp_path, zipfile.ZIP_STORED)), length)
    elif kind == "tar":
        app = body_app(wrapped(tar_member(tmp_path)))
    elif kind == "subclass":
        app = body_app(wrapped(ReadsItsOwnWay(path)))
    else:
        expected = Path("/proc/sys/kernel/ostype").read_bytes()
        app = body_app(wrapped(open("/proc/sys/kernel/ostype", "rb")))  # noqa: SIM115
    result, server_wrapper = gunicorn_call(app, {"Range": value} if value else {})
    try:
        assert not isinstance(result, server_wrapper)
        body = b"".join(result)
    finally:
        result.close()
    if value is None or kind == "procfs":
        assert body == expected
    else:
        assert body == expected[40_000:100_000]


@pytest.mark.parametrize("opener", [open, ClosesLoudly, tempfile.TemporaryFile])
def test_a_plain_file_still_goes_to_the_servers_wrapper(tmp_path: Path, opener: Any) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)

    def make(environ: dict[str, Any]) -> Any:
        if opener is tempfile.TemporaryFile:
            file = opener()
            file.write(DATA)
            file.seek(0)
        else:
            file = opener(path, "rb")
        file.read(16)  # read and seeked back inside the buffer: the descriptor is at 8192
        file.seek(0)
        return environ["wsgi.file_wrapper"](file, 4096)

    result, server_wrapper = gunicorn_call(body_app(make), {"Range": "bytes=0-49999"})
    try:
        assert isinstance(result, server_wrapper)
        # Where gunicorn's sendfile starts: the descriptor's offset is the window's start.
        fileno = result.filelike.fileno()
        assert os.lseek(fileno, 0, os.SEEK_CUR) == 0
        assert os.pread(fileno, 50_000, 0) == DATA[:50_000]
        assert b"".join(result) == DATA[:50_000]
    finally:
        result.close()
