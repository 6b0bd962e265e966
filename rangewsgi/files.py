"""File bodies: the ``wsgi.file_wrapper`` offered to the inner app, finding the file inside a
response body, its remaining size, and a bounded view that keeps ``fileno()`` for sendfile."""

from __future__ import annotations

import io
import os
import stat
import wsgiref.util
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import werkzeug.wsgi

__all__ = ["BoundedFile", "FileWrapper", "FoundFile", "TruncatedBody", "find_file",
           "remaining_size"]


class TruncatedBody(OSError):
    """The body ended before the bytes its length promised: the response must be aborted."""


class SeekableFile(Protocol):
    """What the middleware needs from a file-like body."""

    def read(self, size: int = ..., /) -> bytes: ...
    def seek(self, offset: int, whence: int = ..., /) -> Any: ...
    def tell(self) -> int: ...


class FileWrapper:
    """The ``wsgi.file_wrapper`` the inner app sees on range requests (PEP 3333).

    It remembers the file so that ranges are served by seeking; when the response passes
    through, the file goes back to the server's own wrapper so zero-copy is kept.
    """

    __slots__ = ("blksize", "filelike")

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while data := read(self.blksize):
            yield data

    def close(self) -> None:
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


# Wrapper classes whose file is known to sit in ``.filelike`` (wsgiref, gunicorn) or ``.file``
# (werkzeug, waitress). The server's own class is checked too, by the caller.
_KNOWN_WRAPPERS: tuple[type, ...] = (FileWrapper, wsgiref.util.FileWrapper,
                                     werkzeug.wsgi.FileWrapper)


def _is_seekable_file(obj: Any) -> bool:
    if isinstance(obj, io.TextIOBase):
        return False
    if not all(callable(getattr(obj, name, None)) for name in ("read", "seek", "tell")):
        return False
    seekable = getattr(obj, "seekable", None)
    try:
        return bool(seekable()) if callable(seekable) else True
    except (OSError, ValueError):
        return False


def find_file(body: object, server_wrapper: object, default_blksize: int) -> FoundFile | None:
    """The seekable file behind ``body``, if there is one, with its current position."""
    wrappers = _KNOWN_WRAPPERS
    if isinstance(server_wrapper, type):
        wrappers += (server_wrapper,)
    if isinstance(body, wrappers):
        candidate = getattr(body, "filelike", None) or getattr(body, "file", None)
        blksize = getattr(body, "blksize", None) or getattr(body, "block_size", None)
    else:
        candidate, blksize = body, None
    if candidate is None or not _is_seekable_file(candidate):
        return None
    try:
        base = candidate.tell()
    except (OSError, ValueError):
        return None
    if not isinstance(base, int) or base < 0:
        return None
    size = blksize if isinstance(blksize, int) and blksize > 0 else default_blksize
    return FoundFile(candidate, base, getattr(body, "close", None), size)


def remaining_size(found: FoundFile) -> int | None:
    """Bytes from the file's current position to its end, or None if that cannot be known."""
    file = found.file
    fileno = getattr(file, "fileno", None)
    if callable(fileno):
        try:
            info = os.fstat(fileno())
        except (OSError, ValueError):
            pass
        else:
            if stat.S_ISREG(info.st_mode):
                return max(info.st_size - found.base, 0)
    try:
        # Works for io objects, sqlite3.Blob (whose seek returns None) and psycopg2 lobjects.
        file.seek(0, os.SEEK_END)
        end = file.tell()
        file.seek(found.base)
    except (OSError, ValueError, TypeError):
        return None
    return end - found.base if isinstance(end, int) and end >= found.base else None


class BoundedFile:
    """A window ``[start, stop)`` of a file: ``read`` stops at ``stop``; ``fileno`` is kept.

    Positions are the underlying file's own, so a server that reads the OS offset (gunicorn's
    sendfile) or measures the rest with ``seek(0, 2)`` and ``tell()`` (waitress) sees exactly
    the window.
    """

    __slots__ = ("_close", "_closed", "_file", "_pos", "start", "stop")

    def __init__(self, file: SeekableFile, start: int, stop: int,
                 close: Callable[[], None] | None) -> None:
        self._file = file
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
