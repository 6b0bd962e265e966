"""Validators from a file's bytes: a strong ``ETag`` and ``Repr-Digest`` (RFC 9530 3) that
every machine holding the same bytes agrees on, computed once per file version.

A version of a file is its stat key: device, inode, size, modification time and change time,
in nanoseconds. The SHA-256 of the whole file is read with ``pread`` (the response's file
position is untouched), in blocks of 1 MiB, and kept:

- in memory, at most ``max_entries`` versions, least recently used first out; an entry is
  found only by the exact stat key, so any change of the five (a write, a rename over the path
  gives another inode, ``touch``, ``chmod``) makes the next request read the file again;
- in an extended attribute of the file (``user.rangewsgi.sha256``), so that other worker
  processes and restarts find it without reading. It holds the digest with the device, inode,
  size and modification time it belongs to, but not the change time: writing an extended
  attribute sets the change time, so a stored change time would be stale the moment it is
  stored. The modification time is what a write of the bytes changes, so it is what must
  match; an attribute that is absent, unreadable, malformed or of another version is ignored,
  and writing it is best-effort (a read-only file system, a file the process may not write,
  a file system without user attributes: nothing is stored, nothing fails).

Decisions where the facts leave room:

- A digest is kept (in memory or in the attribute) only for a *settled* version: one whose
  modification time is at least ``settle_ns`` (2 s) before the reading started. File systems
  stamp times with a coarse clock (a kernel tick; FAT: 2 s), so two writes close together can
  leave the same stat key over different bytes; a digest read between them must not outlive
  the request (the "racy" case of ``git``'s index). A file younger than that is read for every
  request until it settles.
- The stat key is taken before and after the reading; a digest whose key moved is thrown away
  and the request goes without content validators (no retry: a file being written is likely
  to move again, and an answer without an ``ETag`` is still correct).
- Concurrent requests for one version wait for a single reading.
- What the attribute cannot see: bytes rewritten in place followed by setting the old
  modification time back (``touch -d``, ``utime``) with the same size. The memory cache sees
  it (the change time moves); the attribute is trusted as ``rsync``'s quick check trusts size
  and time. Whoever may set a ``user.`` attribute may write the bytes too.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .digest_fields import format_repr_digest
from .files import on_disk

__all__ = ["CACHE", "ContentValidators", "DigestCache", "cached_content_validators",
           "content_validators", "etag_for", "stat_key"]

BLOCK_SIZE = 1 << 20  # bytes read per pread
XATTR_NAME = "user.rangewsgi.sha256"
_XATTR_VERSION = b"rangewsgi-sha256-v1"
_XATTR_MAX = 256  # a stored value is about 130 bytes; anything longer is not ours
_DIGITS = re.compile(rb"[0-9]{1,20}\Z")
_HEX_DIGEST = re.compile(rb"[0-9a-f]{64}\Z")
_SETTLE_NS = 2_000_000_000

StatKey = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns


@dataclass(frozen=True, slots=True)
class ContentValidators:
    """What a file's bytes give: its SHA-256, a strong ``ETag`` (RFC 9110 8.8.3) made of the
    bytes only, and the ``Repr-Digest`` field value (RFC 9530 3: ``sha-256=:<base64>:``)."""

    sha256: bytes
    etag: str
    repr_digest: str

    @classmethod
    def of(cls, sha256: bytes) -> ContentValidators:
        """The validators of the bytes whose SHA-256 is ``sha256`` (made once per version,
        so that a request only looks them up)."""
        return cls(sha256, etag_for(sha256), format_repr_digest([("sha-256", sha256)]))


def etag_for(sha256: bytes) -> str:
    """``"sha256-<base64url of the digest>"``: etagc characters only (RFC 9110 8.8.3), the
    same on every machine that holds the same bytes (8.8.3.1: "a collision-resistant hash of
    the representation content")."""
    text = base64.urlsafe_b64encode(sha256).rstrip(b"=").decode("ascii")
    return f'"sha256-{text}"'


def stat_key(info: os.stat_result) -> StatKey:
    """The five numbers that identify one version of a file."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _hash_descriptor(fd: int) -> bytes:
    """SHA-256 of everything ``fd`` holds, read with ``pread``: its offset is not moved."""
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK_SIZE)
    view = memoryview(buffer)
    offset = 0
    while True:
        if hasattr(os, "preadv"):
            count = os.preadv(fd, [buffer], offset)
            chunk = view[:count]
        else:  # pragma: no cover - platforms without preadv
            chunk = memoryview(os.pread(fd, BLOCK_SIZE, offset))
            count = len(chunk)
        if not count:
            return digest.digest()
        digest.update(chunk)  # hashlib lets other threads run while it hashes a block
        offset += count


def _xattr_value(key: StatKey, sha256: bytes) -> bytes:
    """What the attribute holds: the version (all of the stat key but the change time) and
    the digest, as ASCII."""
    numbers = b" ".join(str(n).encode("ascii") for n in key[:4])
    return b"%s %s %s" % (_XATTR_VERSION, numbers, sha256.hex().encode("ascii"))


def _parse_xattr(value: bytes, key: StatKey) -> bytes | None:
    """The digest stored in ``value`` if it belongs to the version ``key``, else None."""
    if len(value) > _XATTR_MAX:
        return None
    fields = value.split(b" ")
    if len(fields) != 6 or fields[0] != _XATTR_VERSION or not _HEX_DIGEST.match(fields[5]):
        return None
    if not all(_DIGITS.match(field) for field in fields[1:5]):
        return None
    if tuple(int(field) for field in fields[1:5]) != key[:4]:
        return None
    return bytes.fromhex(fields[5].decode("ascii"))


def _read_xattr(fd: int, key: StatKey) -> bytes | None:
    """The digest another process stored on the file for version ``key``, if any."""
    getxattr: Callable[..., bytes] | None = getattr(os, "getxattr", None)
    if getxattr is None:
        return None
    try:
        value = getxattr(fd, XATTR_NAME)
    except OSError:  # absent (ENODATA), unsupported, not permitted: nothing stored
        return None
    return _parse_xattr(value, key)


def _write_xattr(fd: int, key: StatKey, sha256: bytes) -> bool:
    """Store the digest of version ``key`` on the file, best-effort; True when stored."""
    setxattr: Callable[..., None] | None = getattr(os, "setxattr", None)
    if setxattr is None:
        return False
    try:
        setxattr(fd, XATTR_NAME, _xattr_value(key, sha256))
    except OSError:  # EPERM, EACCES, ENOTSUP, EROFS, ENOSPC, EDQUOT: not stored
        return False
    return True


class _Reading:
    """One reading of a version in progress: later requests for it wait for its result."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: ContentValidators | None = None


class DigestCache:
    """Content validators per file version: memory (LRU, ``max_entries``), then the file's
    extended attribute (when ``use_xattr``), then one reading of the file."""

    def __init__(self, max_entries: int = 4096, *, use_xattr: bool = True,
                 settle_ns: int = _SETTLE_NS,
                 clock: Callable[[], int] = time.time_ns) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.use_xattr = use_xattr
        self.settle_ns = settle_ns
        self.clock = clock
        self._entries: OrderedDict[StatKey, ContentValidators] = OrderedDict()
        self._readings: dict[StatKey, _Reading] = {}
        self._lock = threading.Lock()

    def cached(self, fd: int) -> ContentValidators | None:
        """The validators of the file's current version if they are in memory; never reads
        the file (one ``fstat``), so an event loop may call it."""
        try:
            key = stat_key(os.fstat(fd))
        except OSError:
            return None
        return self._get(key)

    def validators(self, fd: int) -> ContentValidators | None:
        """The validators of the file's current version; blocks while the file is read when
        no process has them yet. None when the file changed while it was read or cannot be
        read."""
        try:
            key = stat_key(os.fstat(fd))
        except OSError:
            return None
        found = self._get(key)
        if found is not None:
            return found
        with self._lock:
            reading = self._readings.get(key)
            owner = reading is None
            if reading is None:
                reading = self._readings[key] = _Reading()
        if not owner:
            reading.done.wait()
            return reading.result
        try:
            reading.result = self._resolve(fd, key)
        finally:
            with self._lock:
                del self._readings[key]
            reading.done.set()
        return reading.result

    def clear(self) -> None:
        """Forget every version held in memory."""
        with self._lock:
            self._entries.clear()

    def _get(self, key: StatKey) -> ContentValidators | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def _put(self, key: StatKey, value: ContentValidators) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def _resolve(self, fd: int, key: StatKey) -> ContentValidators | None:
        """The attribute's digest for ``key``, else a reading of the file."""
        stored = _read_xattr(fd, key) if self.use_xattr else None
        if stored is not None:
            found = ContentValidators.of(stored)
            self._put(key, found)
            return found
        return self._read(fd, key)

    def _read(self, fd: int, key: StatKey) -> ContentValidators | None:
        """Read the file; keep the digest when the version held still and has settled."""
        started = self.clock()
        try:
            sha256 = _hash_descriptor(fd)
            after = stat_key(os.fstat(fd))
        except OSError:
            return None
        if after != key:
            return None  # the bytes read may be of no single version: thrown away
        found = ContentValidators.of(sha256)
        if key[3] > started - self.settle_ns:
            return found  # a recent write may be followed by one the stat key cannot show
        self._put(key, found)
        if self.use_xattr and _write_xattr(fd, key, sha256):
            self._remember_after_xattr(fd, key, found)
        return found

    def _remember_after_xattr(self, fd: int, key: StatKey, found: ContentValidators) -> None:
        """Writing the attribute moved the change time: keep the entry under the new key too,
        when nothing but the change time moved."""
        try:
            now = stat_key(os.fstat(fd))
        except OSError:
            return
        if now[:4] == key[:4] and now != key:
            self._put(now, found)


CACHE = DigestCache()
"""The cache the middleware uses: one per process."""


def _descriptor(file: Any) -> int | None:
    """The descriptor of a plain regular file (``files.on_disk``), else None."""
    if not on_disk(file):
        return None
    try:
        fd: int = file.fileno()
    except (OSError, ValueError):
        return None
    return fd


def content_validators(file: Any, cache: DigestCache | None = None) -> ContentValidators | None:
    """The content validators of a plain regular file (``files.on_disk``); None for any other
    body, or when the file changed while it was read. Blocking: an event loop runs it in a
    worker thread."""
    fd = _descriptor(file)
    if fd is None:
        return None
    return (cache if cache is not None else CACHE).validators(fd)


def cached_content_validators(file: Any,
                              cache: DigestCache | None = None) -> ContentValidators | None:
    """The content validators of a plain regular file when they are in memory; never reads
    the file's bytes (an event loop may call it)."""
    fd = _descriptor(file)
    if fd is None:
        return None
    return (cache if cache is not None else CACHE).cached(fd)
