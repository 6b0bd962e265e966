"""A ZIP archive of files and ranged sources, as a ranged source: any range, no temporary file.

``ZipSource(members)`` lays the archive out from the members' names and sizes alone (a
``stat`` per file, a source's ``size``), so its ``size`` is known before a byte of any member
is read, and any range of it can be produced by reading only what the range covers.

The layout (section numbers are those of PKWARE's APPNOTE.TXT 6.3.10):

- every member is *stored* (compression method 0, 4.4.5): compressed sizes would be unknown
  until the data had been compressed, and media or archives do not shrink anyway;
- flags (4.4.4): bit 3 (sizes and CRC-32 in a data descriptor after the data) and bit 11
  (the name is UTF-8) on every member;
- per member: a local file header (4.3.7) with CRC-32 and both sizes zero, as bit 3 asks,
  then the member's bytes, then a data descriptor (4.3.9) with its signature, the CRC-32 and
  the sizes; then the central directory (4.3.12), one header per member with the CRC-32,
  sizes and the offset of its local header; then the end of central directory record
  (4.3.16).
- ZIP64 (4.5.3 extra field, 4.3.14 and 4.3.15 end records): a member of 0xFFFFFFFF bytes or
  more gets a ZIP64 extra field in its local header (sizes 0xFFFFFFFF there, zero in the extra
  field, as bit 3 asks) and 8-byte sizes in its data descriptor (4.3.9.2); a central directory
  header carries a ZIP64 extra field holding, in order, each of its size and offset fields that
  does not fit in 4 bytes (those fields read 0xFFFFFFFF); the ZIP64 end of central directory
  record and its locator come before the end record when the entry count does not fit in 2
  bytes or the directory's size or offset does not fit in 4. Nothing else uses ZIP64.

Why data descriptors rather than the CRC-32 in the local header: a local header holding the
CRC-32 could not be sent before the member had been read whole, so a range over a member's
start, or a plain download, would read every member twice (once for its CRC-32, once to send
it). With bit 3 the local header needs no CRC-32, a range over member data alone needs none,
and a download computes each CRC-32 while it sends the member's bytes, in time for the data
descriptor right after them. Only a range that covers a data descriptor or a central
directory header needs a CRC-32 not yet known: then the member is read once to compute it
(unless the caller gave it, or it is cached for this version of the member).

Determinism: the bytes depend only on the members' names, sizes, modification times and
contents. Modification times are the members' (``st_mtime``; a source's ``Last-Modified``),
as DOS date and time in UTC (4.4.6), clamped to 1980..2107; every member has the same
attributes (a regular file, mode 0644). The strong ``ETag`` is a hash of each member's name,
size and version: a file's ``st_mtime_ns`` (device and inode are left out, so that copies of
the same tree on several machines share the ETag, as nginx's size-mtime ETags do), a source's
own strong ``ETag``, and a CRC-32 the caller gave. A source member without a strong ``ETag``
gives the archive no ``ETag`` (its replacement could not be seen).

A file is checked on every read: opened, then ``fstat`` compared with the ``stat`` taken when
the archive was made (device, inode, size, ``st_mtime_ns``) before each block is yielded; a
difference, or a file shorter than its size, raises ``SourceChanged``: the response is cut,
never sent with bytes of two versions. CRC-32s are cached per file version (device, inode,
size, ``st_mtime_ns``) and per source ``ETag`` (with what the source is a version of: its
``url``, ``bucket``/``key`` or ``path``), in a bounded in-memory cache shared by the process.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import threading
import zlib
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from ..httpdate import format_http_date, parse_http_date
from . import RangedSource, SourceChanged, UpstreamError, is_ranged_source
from ._checks import check_range

__all__ = ["CRC_CACHE_SIZE", "ZipSource", "crc_cache_clear"]

CRC_CACHE_SIZE = 65536
"""CRC-32s kept by the process-wide cache, at most (least recently used first out)."""

_FORMAT = "rangewsgi-zip-1"  # part of the ETag: a change of layout changes every ETag
_U16 = 0xFFFF
_U32 = 0xFFFFFFFF
_FLAGS = 0x0008 | 0x0800  # 4.4.4: bit 3 data descriptor, bit 11 UTF-8 names
_VERSION_MADE_BY = (3 << 8) | 63  # 4.4.2: UNIX attributes, APPNOTE 6.3
_VERSION_STORED = 20  # 4.4.3.2: 2.0, the minimum many readers expect
_VERSION_ZIP64 = 45  # 4.4.3.2: 4.5, ZIP64 format extensions
_EXTERNAL_ATTR = (0o100644 << 16)  # a regular file, rw-r--r--, in the UNIX upper half
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 4.3.7
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 4.3.12
_END = struct.Struct("<IHHHHIIH")  # 4.3.16
_END64 = struct.Struct("<IQHHIIQQQQ")  # 4.3.14
_LOCATOR = struct.Struct("<IIQI")  # 4.3.15
_SIG_LOCAL, _SIG_DESCRIPTOR, _SIG_CENTRAL = 0x04034B50, 0x08074B50, 0x02014B50
_SIG_END, _SIG_END64, _SIG_LOCATOR = 0x06054B50, 0x06064B50, 0x07064B50
_DOS_EPOCH = (1980, 1, 1, 0, 0, 0)
_DOS_LAST = (2107, 12, 31, 23, 59, 58)
_LATEST = 253402300799.0  # 9999-12-31T23:59:59Z

_cache_lock = threading.Lock()
_crc_cache: OrderedDict[tuple[Any, ...], int] = OrderedDict()


def crc_cache_clear() -> None:
    """Forget every cached CRC-32 (tests, or after a mass replacement of files)."""
    with _cache_lock:
        _crc_cache.clear()


def _cached_crc(key: tuple[Any, ...] | None) -> int | None:
    if key is None:
        return None
    with _cache_lock:
        crc = _crc_cache.get(key)
        if crc is not None:
            _crc_cache.move_to_end(key)
        return crc


def _cache_crc(key: tuple[Any, ...] | None, crc: int) -> None:
    if key is None:
        return
    with _cache_lock:
        _crc_cache[key] = crc
        _crc_cache.move_to_end(key)
        while len(_crc_cache) > CRC_CACHE_SIZE:
            _crc_cache.popitem(last=False)


def _dos_datetime(moment: datetime | None) -> tuple[int, int]:
    """4.4.6: (time, date) in MS-DOS format, UTC, two-second resolution, 1980..2107."""
    parts: tuple[int, ...] = _DOS_EPOCH
    if moment is not None:
        parts = min(max(tuple(moment.astimezone(timezone.utc).timetuple()[:6]), _DOS_EPOCH),
                    _DOS_LAST)
    year, month, day, hour, minute, second = parts
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


def _checked_name(arcname: str) -> bytes:
    """The member name as UTF-8 bytes; ValueError for one an extractor could misuse."""
    if not isinstance(arcname, str) or not arcname:
        raise ValueError(f"member name {arcname!r}: empty or not a string")
    if "\\" in arcname or "\0" in arcname:
        raise ValueError(f"member name {arcname!r}: backslash or NUL")
    if arcname.startswith("/") or (len(arcname) > 1 and arcname[1] == ":"):
        raise ValueError(f"member name {arcname!r}: absolute")  # 4.4.17.1: no drive, no "/"
    if any(part in ("", ".", "..") for part in arcname.split("/")):
        raise ValueError(f"member name {arcname!r}: empty, '.' or '..' segment")
    encoded = arcname.encode("utf-8")  # surrogates raise UnicodeEncodeError, a ValueError
    if len(encoded) > _U16:
        raise ValueError(f"member name {arcname[:40]!r}...: longer than 65535 bytes")
    return encoded


def _check_unique(names: Iterable[bytes]) -> None:
    seen: set[bytes] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"member name {name.decode()!r} appears twice")
        seen.add(name)


def _strong_etag(source: Any) -> str | None:
    etag = getattr(source, "etag", None)
    if isinstance(etag, str) and etag.startswith('"') and etag.endswith('"') and len(etag) > 1:
        return etag
    return None


_IDENTITY_ATTRIBUTES = ("url", "bucket", "key", "version_id", "path")


def _identity(source: Any) -> tuple[str, ...] | None:
    """What a source is a version *of*: RFC 9110 8.8.3 makes an entity-tag unique per
    resource only, so the CRC-32 cache keys a source's ETag with its type and its ``url``,
    ``bucket``/``key``/``version_id`` or ``path`` (and file system protocol); None when it has
    none of them (then its CRC-32 is kept by the archive alone)."""
    found = [f"{name}={value!r}" for name in _IDENTITY_ATTRIBUTES
             if isinstance(value := getattr(source, name, None), str)]
    if not found:
        return None
    kind = type(source)
    protocol = getattr(getattr(source, "fs", None), "protocol", None)
    return (f"{kind.__module__}.{kind.__qualname__}", repr(protocol), *found)


@dataclass(slots=True)
class _Member:
    """One member: where its bytes come from, what version they are, and where they go."""

    name: bytes
    size: int
    path: str | None  # a file, or
    source: RangedSource | None  # a ranged source
    stat_key: tuple[int, int, int, int] | None  # (st_dev, st_ino, st_size, st_mtime_ns)
    version: str | None  # what the ETag uses; None: no version known
    modified: datetime | None
    crc: int | None  # given by the caller or learnt
    crc_key: tuple[Any, ...] | None  # the process-wide cache's key
    offset: int = 0  # of the local header
    zip64: bool = False  # the size needs ZIP64 (local extra field, 8-byte descriptor)

    @property
    def header_len(self) -> int:
        return _LOCAL.size + len(self.name) + (20 if self.zip64 else 0)

    @property
    def data_offset(self) -> int:
        return self.offset + self.header_len

    @property
    def descriptor_len(self) -> int:
        return 24 if self.zip64 else 16

    def central_extra(self) -> list[int]:
        """4.5.3: the fields of the central header's ZIP64 extra field, in their order."""
        fields = [self.size, self.size] if self.size >= _U32 else []
        return fields + ([self.offset] if self.offset >= _U32 else [])

    @property
    def central_len(self) -> int:
        extra = self.central_extra()
        return _CENTRAL.size + len(self.name) + (4 + 8 * len(extra) if extra else 0)


def _member(entry: Sequence[Any]) -> _Member:
    """A ``(arcname, path)``, ``(arcname, path, crc32)`` or ``(arcname, source[, crc32])``."""
    if len(entry) not in (2, 3):
        raise ValueError(f"member {entry!r}: not (arcname, path or source[, crc32])")
    name = _checked_name(entry[0])
    given = entry[2] if len(entry) == 3 else None
    if given is not None and not (isinstance(given, int) and 0 <= given <= _U32):
        raise ValueError(f"member {entry[0]!r}: CRC-32 {given!r} not in 0..0xFFFFFFFF")
    if is_ranged_source(entry[1]):
        return _source_member(name, entry[1], given)
    return _file_member(name, os.fspath(entry[1]), given)


def _file_member(name: bytes, path: str, given: int | None) -> _Member:
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: not a regular file")
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    seconds = min(max(st.st_mtime_ns / 1e9, 0.0), _LATEST)  # datetime's own range
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return _Member(name, st.st_size, path, None, key, f"mtime_ns={st.st_mtime_ns}", moment,
                   given, key)


def _source_member(name: bytes, source: RangedSource, given: int | None) -> _Member:
    etag = _strong_etag(source)
    modified_header = getattr(source, "last_modified", None)
    modified = parse_http_date(modified_header) if isinstance(modified_header, str) else None
    identity = _identity(source)
    key = (identity, etag, source.size) if etag is not None and identity else None
    return _Member(name, source.size, None, source, None,
                   None if etag is None else f"etag={etag}", modified, given, key)


class _Kind(Enum):
    LOCAL = "local header"
    DATA = "data"
    DESCRIPTOR = "data descriptor"
    CENTRAL = "central directory header"
    END64 = "zip64 end of central directory"
    LOCATOR = "zip64 end of central directory locator"
    END = "end of central directory"


@dataclass(frozen=True, slots=True)
class _Segment:
    offset: int
    length: int
    kind: _Kind
    index: int  # the member's, for member kinds


class ZipSource:
    """A ZIP archive of ``members``, made on demand: any byte range, no temporary file.

    Making one stats each file (no member's bytes are read) and checks the names: a
    ``ValueError`` for an empty name, an absolute one, a backslash, a ``.`` or ``..``
    segment, or a duplicate; ``FileNotFoundError`` for a missing file.

    Args:
        members: ``(arcname, path)``, ``(arcname, path, crc32)`` (a CRC-32 the caller
            already knows: no read is needed for it) or ``(arcname, source)`` with any ranged
            source (``S3Source``, ``HTTPSource``...; then ``(arcname, source, crc32)`` too).
            ``arcname`` is the name in the archive, ``/``-separated.
        block_size: bytes per read from a file.

    Attributes:
        size (int): the archive's length in bytes.
        etag (str | None): a strong ETag from the members' names, sizes and versions; None
            when a source member has no strong ETag.
        last_modified (str | None): the newest member's modification time, as an HTTP-date.
        content_type (str): ``application/zip``.
    """

    content_type = "application/zip"

    def __init__(self, members: Iterable[Sequence[Any]], *, block_size: int = 256 * 1024
                 ) -> None:
        if block_size <= 0:
            raise ValueError("block_size must be positive")
        self.block_size = block_size
        self.closed = False
        self._members = [_member(entry) for entry in members]
        _check_unique(m.name for m in self._members)
        self._segments = self._layout()
        self._starts = [segment.offset for segment in self._segments]
        last = self._segments[-1]
        self.size: int = last.offset + last.length
        self.etag: str | None = self._etag()
        times = [m.modified for m in self._members if m.modified is not None]
        self.last_modified: str | None = (format_http_date(max(times).timestamp())
                                          if times else None)

    # -- the layout --

    def _layout(self) -> list[_Segment]:
        segments: list[_Segment] = []
        offset = 0
        for index, m in enumerate(self._members):
            m.offset, m.zip64 = offset, m.size >= _U32
            for kind, length in ((_Kind.LOCAL, m.header_len), (_Kind.DATA, m.size),
                                 (_Kind.DESCRIPTOR, m.descriptor_len)):
                if length:
                    segments.append(_Segment(offset, length, kind, index))
                    offset += length
        self._cd_offset = offset
        for index, m in enumerate(self._members):
            segments.append(_Segment(offset, m.central_len, _Kind.CENTRAL, index))
            offset += m.central_len
        self._cd_size = offset - self._cd_offset
        if self._needs_zip64_end():
            self._end64_offset = offset
            segments.append(_Segment(offset, _END64.size, _Kind.END64, -1))
            segments.append(_Segment(offset + _END64.size, _LOCATOR.size, _Kind.LOCATOR, -1))
            offset += _END64.size + _LOCATOR.size
        segments.append(_Segment(offset, _END.size, _Kind.END, -1))
        return segments

    def _needs_zip64_end(self) -> bool:
        """4.3.14: entries, directory size or offset beyond the end record's fields."""
        return (len(self._members) >= _U16 or self._cd_size >= _U32
                or self._cd_offset >= _U32)

    def _etag(self) -> str | None:
        if any(m.version is None for m in self._members):
            return None
        digest = hashlib.sha256(_FORMAT.encode())
        for m in self._members:
            fields = (m.name.hex(), str(m.size), m.version or "",
                      "" if m.crc is None else f"{m.crc:08x}")  # only a given one, here
            digest.update(("\0".join(fields) + "\n").encode())
        return f'"zip-{digest.hexdigest()[:40]}"'

    # -- the protocol --

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        """Bytes ``[start, stop)``, reading only the members (and CRC-32s) they cover."""
        check_range("ZipSource", self.closed, start, stop, self.size)
        return self._range(start, stop)

    def __iter__(self) -> Iterator[bytes]:
        """The whole archive; each CRC-32 is computed while its member is sent."""
        return self.read_range(0, self.size)

    def close(self) -> None:
        """Close the member sources (the archive owns them)."""
        if self.closed:
            return
        self.closed = True
        for m in self._members:
            if m.source is not None:
                m.source.close()

    def __enter__(self) -> ZipSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- producing a range --

    def _range(self, start: int, stop: int) -> Iterator[bytes]:
        position = start
        index = bisect_right(self._starts, start) - 1
        while position < stop:
            segment = self._segments[index]
            low = position - segment.offset
            high = min(stop, segment.offset + segment.length) - segment.offset
            if segment.kind is _Kind.DATA:
                yield from self._data(self._members[segment.index], low, high)
            else:
                yield self._structure(segment)[low:high]
            position = segment.offset + high
            index += 1

    def _data(self, m: _Member, low: int, high: int) -> Iterator[bytes]:
        """A member's bytes ``[low, high)``; the whole of them also learns its CRC-32."""
        if low or high != m.size or m.crc is not None:
            yield from self._member_bytes(m, low, high)
            return
        crc = _cached_crc(m.crc_key)
        if crc is not None:
            m.crc = crc
            yield from self._member_bytes(m, low, high)
            return
        crc = 0
        for chunk in self._member_bytes(m, low, high):
            crc = zlib.crc32(chunk, crc)
            yield chunk
        self._learn(m, crc)

    def _learn(self, m: _Member, crc: int) -> None:
        m.crc = crc
        _cache_crc(m.crc_key, crc)

    def _crc(self, m: _Member) -> int:
        """The member's CRC-32: given, learnt, cached, or else read whole now."""
        if m.crc is None:
            cached = _cached_crc(m.crc_key)
            if cached is None:
                cached = 0
                for chunk in self._member_bytes(m, 0, m.size):
                    cached = zlib.crc32(chunk, cached)
            self._learn(m, cached)
        assert m.crc is not None
        return m.crc

    def _member_bytes(self, m: _Member, low: int, high: int) -> Iterator[bytes]:
        if self.closed:
            raise ValueError("ZipSource: read from a closed source")
        if low == high:
            return iter(())
        if m.source is not None:
            return _counted(m.source.read_range(low, high), high - low, m.name)
        return self._file_bytes(m, low, high)

    def _file_bytes(self, m: _Member, low: int, high: int) -> Iterator[bytes]:
        """``[low, high)`` of a file, each block checked against the version first seen."""
        assert m.path is not None
        try:
            file = open(m.path, "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError as exc:
            raise SourceChanged(f"{m.path}: gone: {exc}") from exc
        with file:
            self._check(m, file)
            file.seek(low)
            position = low
            while position < high:
                data = file.read(min(self.block_size, high - position))
                if not data:
                    raise SourceChanged(f"{m.path}: ends at {position}, not {m.size}")
                self._check(m, file)  # before the block goes out: never a byte of another
                position += len(data)
                yield data

    @staticmethod
    def _check(m: _Member, file: io.RawIOBase) -> None:
        st = os.fstat(file.fileno())
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != m.stat_key:
            raise SourceChanged(f"{m.path}: changed since the archive was laid out")

    # -- the structures --

    def _structure(self, segment: _Segment) -> bytes:
        if segment.kind is _Kind.END or segment.kind is _Kind.END64:
            return self._end(segment.kind)
        if segment.kind is _Kind.LOCATOR:
            return _LOCATOR.pack(_SIG_LOCATOR, 0, self._end64_offset, 1)
        m = self._members[segment.index]
        if segment.kind is _Kind.LOCAL:
            return _local_header(m)
        if segment.kind is _Kind.DESCRIPTOR:
            return _descriptor(m, self._crc(m))
        return _central_header(m, self._crc(m))

    def _end(self, kind: _Kind) -> bytes:
        count, size, offset = len(self._members), self._cd_size, self._cd_offset
        if kind is _Kind.END64:  # 4.3.14: the record's size excludes its first 12 bytes
            return _END64.pack(_SIG_END64, _END64.size - 12, _VERSION_MADE_BY, _VERSION_ZIP64,
                               0, 0, count, count, size, offset)
        zip64 = self._needs_zip64_end()  # 4.4.1.4: the fields that do not fit read all ones
        return _END.pack(_SIG_END, 0, 0, min(count, _U16) if not zip64 else _U16,
                         min(count, _U16) if not zip64 else _U16,
                         size if size < _U32 else _U32, offset if offset < _U32 else _U32, 0)


def _counted(chunks: Iterable[bytes], count: int, name: bytes) -> Iterator[bytes]:
    """Exactly ``count`` bytes of a member source, or UpstreamError before a wrong one."""
    remaining = count
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            if len(chunk) > remaining:
                raise UpstreamError(f"member {name.decode()!r}: source gave more than asked")
            remaining -= len(chunk)
            if chunk:
                yield bytes(chunk)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if remaining:
        raise UpstreamError(f"member {name.decode()!r}: source ended {remaining} bytes early")


def _local_header(m: _Member) -> bytes:
    """4.3.7 with bit 3: CRC-32 and sizes zero, or all ones with a ZIP64 extra field of
    zeros (4.5.3: the local one holds both sizes)."""
    time, date = _dos_datetime(m.modified)
    sizes, extra = (_U32, struct.pack("<HHQQ", 1, 16, 0, 0)) if m.zip64 else (0, b"")
    version = _VERSION_ZIP64 if m.zip64 else _VERSION_STORED
    return _LOCAL.pack(_SIG_LOCAL, version, _FLAGS, 0, time, date, 0, sizes, sizes,
                       len(m.name), len(extra)) + m.name + extra


def _descriptor(m: _Member, crc: int) -> bytes:
    """4.3.9: signature, CRC-32, compressed and uncompressed sizes (8 bytes each if ZIP64)."""
    sizes = struct.pack("<QQ" if m.zip64 else "<II", m.size, m.size)
    return struct.pack("<II", _SIG_DESCRIPTOR, crc) + sizes


def _central_header(m: _Member, crc: int) -> bytes:
    """4.3.12, with a ZIP64 extra field (4.5.3) for the fields that do not fit in 4 bytes."""
    time, date = _dos_datetime(m.modified)
    fields = m.central_extra()
    extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
    size = m.size if m.size < _U32 else _U32
    offset = m.offset if m.offset < _U32 else _U32
    version = _VERSION_ZIP64 if fields else _VERSION_STORED
    return _CENTRAL.pack(_SIG_CENTRAL, _VERSION_MADE_BY, version, _FLAGS, 0, time, date, crc,
                         size, size, len(m.name), len(extra), 0, 0, 0, _EXTERNAL_ATTR,
                         offset) + m.name + extra
