"""A file on any fsspec file system (S3, GCS, Azure, HTTP, SFTP, local...) as a ranged source.

``FsspecSource(fs, path)`` asks ``fs.info(path)`` once for the size and whatever version
marks the file system keeps (ETag, version id, generation, modification time), then reads each
part with ranged ``fs.cat_file(path, start, end)`` calls of at most ``block_size`` bytes (so
memory stays bounded by one block). fsspec has no conditional read, so after each block the
file's ``info()`` is asked again, before the block is yielded: a file replaced meanwhile
raises ``SourceChanged`` and no byte of the block goes out. ``verify=False`` saves those
calls where files never change in place.

Needs ``fsspec`` and the file system's own package (``pip install rangewsgi[fsspec]``, plus
``s3fs``, ``gcsfs``, ``adlfs``, ``aiohttp`` or ``paramiko`` as the URL needs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from ..httpdate import format_http_date, parse_http_date
from . import SourceChanged, UpstreamError
from ._checks import check_range, translated

__all__ = ["VERSION_KEYS", "FsspecSource", "UpstreamError"]

VERSION_KEYS = ("ETag", "etag", "VersionId", "version_id", "generation", "md5Hash",
                "LastModified", "last_modified", "Last-Modified", "mtime", "updated",
                "created")
"""The keys of ``info()`` that mark a version; a change in any of them (or the size) means
the file was replaced."""

_ETAG_KEYS = ("ETag", "etag")
_MODIFIED_KEYS = ("LastModified", "last_modified", "Last-Modified", "mtime", "updated")
_T = TypeVar("_T")


def _as_oserror(where: str, exc: Exception) -> OSError | None:
    """A file system's errors as OSError subclasses (most fsspec backends raise them already;
    those go on unchanged)."""
    if isinstance(exc, OSError):
        return None
    if isinstance(exc, asyncio.TimeoutError):  # TimeoutError itself from Python 3.11 on
        return TimeoutError(f"{where}: timed out: {exc}")
    return UpstreamError(f"{where}: {type(exc).__name__}: {exc}")


def _entity_tag(value: Any) -> str | None:
    """A version mark as an entity-tag header value (quoted), if it can be one."""
    if not isinstance(value, str) or not value or any(c in value for c in '\\\r\n'):
        return None
    if value.startswith(('"', 'W/"')) and value.endswith('"') and len(value) >= 2:
        return value
    if '"' in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    return f'"{value}"'


def _http_date(value: Any) -> str | None:
    """A modification time (datetime, POSIX seconds or HTTP-date) as an HTTP-date."""
    if isinstance(value, datetime):
        return format_http_date(value.timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_http_date(float(value))
    if isinstance(value, str):
        parsed = parse_http_date(value)
        if parsed is not None:
            return format_http_date(parsed.timestamp())
        try:
            return format_http_date(datetime.fromisoformat(value).timestamp())
        except ValueError:
            return None
    return None


class FsspecSource:
    """A file on an fsspec file system, read in ranged ``cat_file`` blocks.

    Making one asks ``fs.info(path)`` once, so that a missing file raises the file system's
    ``FileNotFoundError`` in the app, before any response header is sent (a directory:
    ``IsADirectoryError``). A read raises ``SourceChanged`` when the file was replaced,
    ``TimeoutError`` on a timeout, and the file system's other errors as they are when they
    are ``OSError``, else wrapped in ``UpstreamError``.

    Args:
        fs: an ``fsspec.AbstractFileSystem`` (``fsspec.filesystem("s3")``, say).
        path: the file's path on ``fs``.
        block_size: bytes per ``cat_file`` call; memory stays bounded by one block.
        verify: ask ``info()`` again after each block, before yielding it, and raise
            ``SourceChanged`` if the file's size or version marks changed (one more
            request per block; ``False`` where files are never replaced in place).

    Attributes:
        size (int): the file's length in bytes.
        etag (str | None): an ``ETag`` the file system reports, quoted.
        last_modified (str | None): its modification time, as an HTTP-date.
        content_type (str | None): a media type the file system reports.
        version (tuple): every version mark of ``info()`` (``VERSION_KEYS``).
    """

    def __init__(self, fs: Any, path: str, *, block_size: int = 4 * 1024 * 1024,
                 verify: bool = True) -> None:
        if block_size <= 0:
            raise ValueError("block_size must be positive")
        self.fs = fs
        self.path = path
        self.block_size = block_size
        self.verify = verify
        self.closed = False
        info = self._info()
        if info.get("type") == "directory":
            raise IsADirectoryError(f"{path} is a directory")
        self.size = int(info["size"])
        self.version = self._version(info)
        self.etag: str | None = next(
            (tag for key in _ETAG_KEYS if (tag := _entity_tag(info.get(key)))), None)
        self.last_modified: str | None = next(
            (date for key in _MODIFIED_KEYS if (date := _http_date(info.get(key)))), None)
        kind = info.get("mimetype") or info.get("ContentType") or info.get("content_type")
        self.content_type: str | None = kind if isinstance(kind, str) else None

    @classmethod
    def from_url(cls, url: str, *, block_size: int = 4 * 1024 * 1024, verify: bool = True,
                 **storage_options: Any) -> FsspecSource:
        """The file at ``url`` (``s3://bucket/key``, ``gcs://...``, ``https://...``)."""
        import fsspec.core  # type: ignore[import-untyped,unused-ignore]

        fs, path = fsspec.core.url_to_fs(url, **storage_options)
        return cls(fs, path, block_size=block_size, verify=verify)

    # -- the protocol --

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        """Bytes ``[start, stop)``, in ``cat_file`` blocks made as they are iterated."""
        check_range(self.path, self.closed, start, stop, self.size)
        return self._blocks(start, stop)

    def __iter__(self) -> Iterator[bytes]:
        """The whole file, block by block."""
        return self._blocks(0, self.size)

    def close(self) -> None:
        """Nothing is held between blocks: mark the source closed."""
        self.closed = True

    def __enter__(self) -> FsspecSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading --

    def _blocks(self, start: int, stop: int) -> Iterator[bytes]:
        position = start
        while position < stop:
            if self.closed:
                raise ValueError(f"{self.path}: read from a closed source")
            end = min(position + self.block_size, stop)
            try:
                data = self._call(self.fs.cat_file, self.path, start=position, end=end)
            except FileNotFoundError as exc:
                raise SourceChanged(f"{self.path}: gone: {exc}") from exc
            if self.verify:
                self.check_version()  # before the block goes out: never a byte of another
            if not isinstance(data, bytes | bytearray | memoryview) or len(data) != end - position:
                got = len(data) if hasattr(data, "__len__") else type(data).__name__
                raise UpstreamError(f"{self.path}: asked for {end - position} bytes at "
                                    f"{position}, got {got}")
            position = end
            yield bytes(data)

    def check_version(self) -> None:
        """Raise ``SourceChanged`` unless the file is still the version first seen."""
        try:
            info = self._info()
        except FileNotFoundError as exc:
            raise SourceChanged(f"{self.path}: gone: {exc}") from exc
        if int(info.get("size", -1)) != self.size or self._version(info) != self.version:
            raise SourceChanged(f"{self.path}: replaced since the response started")

    # -- the file system --

    def _info(self) -> Mapping[str, Any]:
        invalidate = getattr(self.fs, "invalidate_cache", None)
        if invalidate is not None:
            invalidate(self.path)  # a listing cached by the file system would hide a change
        info: Mapping[str, Any] = self._call(self.fs.info, self.path)
        return info

    @staticmethod
    def _version(info: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        return tuple((key, str(info[key])) for key in VERSION_KEYS if info.get(key) is not None)

    def _call(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        with translated(self.path, _as_oserror):
            return function(*args, **kwargs)
