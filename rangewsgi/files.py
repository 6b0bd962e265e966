"""File bodies: the ``wsgi.file_wrapper`` offered to the inner app, finding the file inside a
response body, its remaining size, and a bounded view that keeps ``fileno()`` for sendfile."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

try:
    import lzma
except ImportError:  # Python built without liblzma
    lzma = None  # type: ignore[assignment]

__all__ = ["BoundedFile", "FileWrapper", "FoundFile", "Measured", "TruncatedBody",
           "is_seekable_file", "measure", "on_disk"]


class TruncatedBody(OSError):
    """A body gave fewer bytes than its length promised, or a ranged source more than it was
    asked for: the response must be aborted."""


class SeekableFile(Protocol):
    """What the middleware needs from a file-like body."""

    def read(self, size: int = ..., /) -> bytes: ...
    def seek(self, offset: int, whence: int = ..., /) -> Any: ...
    def tell(self) -> int: ...


class FileWrapper:
    """The ``wsgi.file_wrapper`` the inner app sees on every ``GET`` and ``HEAD`` (PEP 3333).

    It remembers the file so that ranges are served by seeking; when the response passes
    through on a server proven to send a file's window exactly, the file goes back to the
    server's own wrapper so zero-copy is kept. It is its own iterator and passes ``seek``,
    ``tell`` and ``seekable`` through, so that range-aware apps (Werkzeug's ``send_file``)
    seek instead of reading from byte 0, and closing what they iterate closes the file.
    """

    __slots__ = ("_closed", "blksize", "filelike")
    default_blksize = 8192  # the middleware offers a subclass with its own block_size

    def __init__(self, filelike: Any, blksize: int | None = None) -> None:
        self.filelike = filelike
        self.blksize = (blksize if isinstance(blksize, int) and blksize > 0
                        else self.default_blksize)
        self._closed = False

    @classmethod
    def with_block_size(cls, block_size: int) -> type[FileWrapper]:
        """A subclass whose wrappers read ``block_size`` bytes when the app names no size."""
        return type("FileWrapper", (cls,), {"__slots__": (), "default_blksize": block_size})

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data: bytes = self.filelike.read(self.blksize)
        if not data:
            raise StopIteration
        return data

    def seekable(self) -> bool:
        return is_seekable_file(self.filelike)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.filelike.seek(offset, whence)
        return self.tell()

    def tell(self) -> int:
        position: int = self.filelike.tell()
        return position

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class FoundFile:
    """A seekable file found in a response body, and how to close that body."""

    __slots__ = ("base", "blksize", "close", "file")

    def __init__(self, file: SeekableFile, base: int, close: Callable[[], None] | None,
                 blksize: int) -> None:
        self.file = file
        self.base = base  # the file position where the representation starts
        self.close = close
        self.blksize = blksize


def is_seekable_file(obj: Any) -> bool:
    """True for a binary file-like object that can seek; probing a foreign object never
    raises (a ``seekable()`` that fails means no)."""
    if isinstance(obj, io.TextIOBase):
        return False
    try:
        if not all(callable(getattr(obj, name, None)) for name in ("read", "seek", "tell")):
            return False
        seekable = getattr(obj, "seekable", None)
        return bool(seekable()) if callable(seekable) else True
    except Exception:  # an app's object may raise anything here: it means no
        return False


# Objects whose read() is a decoding of their descriptor's bytes, or whose seek to the end
# decompresses everything: their size is unknown to the middleware.
_COSTLY_SEEK: tuple[type, ...] = (gzip.GzipFile, bz2.BZ2File, zipfile.ZipExtFile)
if lzma is not None:
    _COSTLY_SEEK += (lzma.LZMAFile,)
# Files of these trees report a size that is not their content (procfs: 0, sysfs: 4096).
_PSEUDO_FILES = ("/proc/", "/sys/")
_TEMPORARY_WRAPPER: type | None = getattr(tempfile, "_TemporaryFileWrapper", None)


# What a file body's bytes and position come from: a subclass that overrides none of these
# (one that only adds to close(), say) yields the bytes its descriptor holds.
_READING = ("read", "readinto", "readall", "readline", "readlines", "read1", "readinto1",
            "peek", "seek", "tell", "fileno", "raw", "__iter__", "__next__")


def _reads_as(obj: Any, base: type) -> bool:
    """True when ``obj`` is a ``base`` that reads, seeks and names its descriptor as
    ``base`` does."""
    kind = type(obj)
    return kind is base or (isinstance(obj, base) and all(
        getattr(kind, name, None) is getattr(base, name, None) for name in _READING))


def _plain_file(obj: Any) -> io.FileIO | None:
    """The ``FileIO`` whose bytes ``obj.read()`` yields unchanged, if ``obj`` is a plain
    (optionally buffered or temporary) binary file; no subclass that rewrites its reads
    (``tarfile.ExFileObject`` reads a member, not its descriptor)."""
    if _TEMPORARY_WRAPPER is not None and type(obj) is _TEMPORARY_WRAPPER:
        obj = getattr(obj, "file", None)
    if _reads_as(obj, io.BufferedReader) or _reads_as(obj, io.BufferedRandom):
        obj = obj.raw
    return obj if _reads_as(obj, io.FileIO) else None


def _regular_stat(file: io.FileIO) -> os.stat_result | None:
    """``fstat`` of a regular file whose size is its content, else None."""
    name = file.name
    if isinstance(name, str) and name.startswith(_PSEUDO_FILES):
        return None
    try:
        fd = file.fileno()
        info = os.fstat(fd)
        # procfs-like files report st_size 0 and have content: a size of 0 is believed only
        # when nothing can be read there.
        if stat.S_ISREG(info.st_mode) and (info.st_size or not os.pread(fd, 1, 0)):
            return info
    except Exception:  # an app's object may raise anything here: it means no
        pass
    return None


def on_disk(obj: Any) -> bool:
    """True when ``obj`` is a plain regular file whose descriptor holds exactly the bytes its
    ``read()`` yields: the only kind of body a server's ``wsgi.file_wrapper`` may send from
    its descriptor (sendfile). Not a compressed stream, archive member, pipe or procfs file."""
    plain = _plain_file(obj)
    return plain is not None and _regular_stat(plain) is not None


class Measured(NamedTuple):
    """What measuring a found file told: bytes from its position to its end, and the
    modification time where the size came from ``fstat``."""

    remaining: int | None
    mtime_ns: int | None = None

    @property
    def on_disk(self) -> bool:
        """Measured by ``fstat`` of a plain regular file: its descriptor holds exactly the
        bytes ``read()`` yields, so a server may send them from it (sendfile)."""
        return self.mtime_ns is not None


def measure(found: FoundFile) -> Measured:
    """Bytes from the file's current position to its end, measured by a source that counts
    the same bytes ``read()`` yields; None when that cannot be known cheaply.

    Plain files: ``fstat``. Other seekable objects (``BytesIO``, ``SpooledTemporaryFile``
    without rolling it over, ``mmap``, tar and stored members, ``sqlite3.Blob``, psycopg2
    large objects): ``seek(0, SEEK_END)`` and ``tell()``. Compressed streams: unknown.
    """
    file = found.file
    plain = _plain_file(file)
    if plain is not None:
        info = _regular_stat(plain)
        if info is None:
            return Measured(None)
        return Measured(max(info.st_size - found.base, 0), info.st_mtime_ns)
    if isinstance(file, _COSTLY_SEEK):
        return Measured(None)
    try:
        # sqlite3.Blob's seek returns None; so does mmap's.
        file.seek(0, os.SEEK_END)
        end = file.tell()
        file.seek(found.base)
    except Exception:  # an app's object may raise anything here: it means no
        return Measured(None)
    if not isinstance(end, int) or end < found.base:
        return Measured(None)
    return Measured(end - found.base)


def _unbuffered(file: SeekableFile) -> SeekableFile:
    """The ``FileIO`` under a buffered plain file, with the buffer emptied; else ``file``.

    A server's wrapper takes the start of a window from the descriptor's offset
    (``lseek(fd, 0, SEEK_CUR)``: gunicorn, bjoern) and may set it back afterwards (gunicorn).
    A buffered reader's ``seek`` inside its buffer moves no offset (an app that sniffed the
    first bytes and seeked back leaves the descriptor at 8192), and an offset moved under its
    buffer makes its ``close()`` fail (``lseek`` to a negative offset, EINVAL). Reading and
    seeking the ``FileIO`` itself keeps the offset and the bytes read the same.
    """
    plain = _plain_file(file)
    if plain is None or plain is file:
        return file
    file.seek(0, os.SEEK_END)  # flushes and empties the buffer (no fast path for SEEK_END)
    return plain


class BoundedFile:
    """A window ``[start, stop)`` of a file: ``read`` stops at ``stop``; ``fileno`` is kept.

    Positions are the underlying file's own, so a server that reads the OS offset (gunicorn's
    sendfile) or measures the rest with ``seek(0, 2)`` and ``tell()`` (waitress) sees exactly
    the window.
    """

    __slots__ = ("_close", "_closed", "_file", "_pos", "start", "stop")

    def __init__(self, file: SeekableFile, start: int, stop: int,
                 close: Callable[[], None] | None) -> None:
        self._file = _unbuffered(file)
        self.start = start
        self.stop = stop
        self._close = close
        self._closed = False
        self._pos = start
        file.seek(start)

    def read(self, size: int | None = -1) -> bytes:
        remaining = self.stop - self._pos
        if remaining <= 0:
            return b""
        want = remaining if size is None or size < 0 else min(size, remaining)
        data = self._file.read(want)
        if not data and want:
            raise TruncatedBody(f"file ended at {self._pos}, before {self.stop}")
        if len(data) > want:
            # A read() that returns more than asked: never more than the window, and the
            # file goes back to where the window says it is.
            data = data[:want]
            self._file.seek(self._pos + want)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        elif whence == os.SEEK_END:
            target = self.stop + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        self._pos = min(max(target, self.start), self.stop)
        self._file.seek(self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        fileno = getattr(self._file, "fileno", None)
        if fileno is None:
            raise io.UnsupportedOperation("fileno")
        result: int = fileno()
        return result

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._close is not None:
                self._close()
            else:
                close = getattr(self._file, "close", None)
                if close is not None:
                    close()

    @property
    def closed(self) -> bool:
        return self._closed
