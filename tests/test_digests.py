"""Content validators (rangewsgi.digests) and the RFC 9530 digest fields
(rangewsgi.digest_fields), on real files in tmp_path.

Whether the file was read is proven by the reads themselves: ``os.preadv`` and ``os.pread``
are wrapped to count, or replaced by functions that fail, so a digest that comes back anyway
did not come from the bytes.
"""

from __future__ import annotations

import base64
import errno
import gzip
import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import digest_verify
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import ROOT

from rangewsgi import RangeMiddleware, digests
from rangewsgi.conditions import is_strong
from rangewsgi.digest_fields import (
    format_repr_digest,
    parse_dictionary,
    parse_repr_digest,
    parse_want_repr_digest,
    s3_repr_digest,
    secure_repr_digest,
)
from rangewsgi.digests import XATTR_NAME, ContentValidators, DigestCache, content_validators

OLD_NS = 1_600_000_000 * 10**9  # a modification time long settled
WAIT = 10.0  # bound of every polling loop here, in seconds


def write(path: Path, data: bytes, mtime_ns: int = OLD_NS) -> Path:
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def validators(path: Path, cache: DigestCache) -> ContentValidators | None:
    with open(path, "rb") as file:
        return content_validators(file, cache)


class Reads:
    """Counts the blocks read by ``os.preadv``/``os.pread``, and by which threads; ``hook``
    runs before each read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.threads: set[int] = set()
        self.hook: Callable[[int], None] | None = None
        real_preadv, real_pread = os.preadv, os.pread

        def preadv(fd: int, buffers: Any, offset: int) -> int:
            self._seen(fd)
            return real_preadv(fd, buffers, offset)

        def pread(fd: int, size: int, offset: int) -> bytes:
            self._seen(fd)
            return real_pread(fd, size, offset)

        monkeypatch.setattr(os, "preadv", preadv)
        monkeypatch.setattr(os, "pread", pread)

    def _seen(self, fd: int) -> None:
        self.count += 1
        self.threads.add(threading.get_ident())
        if self.hook is not None:
            self.hook(fd)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    return Reads(monkeypatch)


@pytest.fixture
def cache() -> DigestCache:
    """A memory-only cache that keeps every version at once (settled or not)."""
    return DigestCache(use_xattr=False, settle_ns=0)


def xattr_supported(directory: Path) -> bool:
    probe = directory / "xattr-probe"
    probe.write_bytes(b"x")
    try:
        os.setxattr(probe, "user.rangewsgi.probe", b"1")
    except (OSError, AttributeError):
        return False
    finally:
        probe.unlink()
    return True


@pytest.fixture
def xattr_dir(tmp_path: Path) -> Path:
    if not xattr_supported(tmp_path):
        pytest.skip(f"no user extended attributes on {tmp_path}'s file system")
    return tmp_path


# -- what the validators are ------------------------------------------------------------------

def test_validators_are_the_sha256_of_the_bytes(tmp_path: Path, cache: DigestCache) -> None:
    data = os.urandom(3 * digests.BLOCK_SIZE + 17)  # several blocks and a partial one
    found = validators(write(tmp_path / "f", data), cache)
    assert found is not None
    sha = hashlib.sha256(data).digest()
    assert found.sha256 == sha
    assert found.repr_digest == f"sha-256=:{base64.b64encode(sha).decode()}:"
    urlsafe = base64.urlsafe_b64encode(sha).rstrip(b"=").decode()
    assert found.etag == f'"sha256-{urlsafe}"'
    assert is_strong(found.etag)
    assert digest_verify.matches(tmp_path / "f", found.repr_digest)


def test_empty_file_has_validators(tmp_path: Path, cache: DigestCache) -> None:
    found = validators(write(tmp_path / "empty", b""), cache)
    assert found is not None and found.sha256 == hashlib.sha256(b"").digest()


def test_same_bytes_other_inode_and_mtime_same_validators(tmp_path: Path,
                                                          cache: DigestCache) -> None:
    data = os.urandom(100_000)
    first = write(tmp_path / "a", data, OLD_NS)
    second = write(tmp_path / "b", data, OLD_NS + 123_456_789_000)
    assert os.stat(first).st_ino != os.stat(second).st_ino
    a, b = validators(first, cache), validators(second, cache)
    assert a is not None and b is not None
    assert (a.etag, a.repr_digest) == (b.etag, b.repr_digest)


def test_other_bytes_other_validators(tmp_path: Path, cache: DigestCache) -> None:
    a = validators(write(tmp_path / "a", b"x" * 1000), cache)
    b = validators(write(tmp_path / "b", b"x" * 999 + b"y"), cache)
    assert a is not None and b is not None
    assert a.etag != b.etag and a.repr_digest != b.repr_digest


def test_file_position_untouched(tmp_path: Path, cache: DigestCache) -> None:
    data = os.urandom(200_000)
    write(tmp_path / "f", data)
    with open(tmp_path / "f", "rb") as file:
        assert file.read(100) == data[:100]  # a buffered reader with bytes in its buffer
        assert content_validators(file, cache) is not None
        assert file.tell() == 100
        assert file.read() == data[100:]


def test_only_plain_files(tmp_path: Path, cache: DigestCache) -> None:
    with gzip.open(tmp_path / "z.gz", "wb") as packed:
        packed.write(b"data" * 100)
    with gzip.open(tmp_path / "z.gz", "rb") as unpacked:
        assert content_validators(unpacked, cache) is None  # fileno() is the compressed file
    assert content_validators(io.BytesIO(b"data"), cache) is None
    assert digests.cached_content_validators(io.BytesIO(b"data"), cache) is None


# -- computed once per version ----------------------------------------------------------------

def test_cache_hit_does_not_read(tmp_path: Path, cache: DigestCache,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "f", os.urandom(50_000))
    first = validators(path, cache)
    assert first is not None

    def refuse(*args: object) -> object:
        raise AssertionError("the file was read")

    monkeypatch.setattr(os, "preadv", refuse)
    monkeypatch.setattr(os, "pread", refuse)
    with open(path, "rb") as file:
        assert digests.cached_content_validators(file, cache) == first
        assert content_validators(file, cache) == first


def test_cached_variant_never_reads(tmp_path: Path, cache: DigestCache, reads: Reads) -> None:
    path = write(tmp_path / "f", b"abc" * 1000)
    with open(path, "rb") as file:
        assert digests.cached_content_validators(file, cache) is None
        assert reads.count == 0
        assert content_validators(file, cache) is not None
        assert digests.cached_content_validators(file, cache) is not None


@pytest.mark.parametrize("change", ["size", "mtime", "inode", "ctime"])
def test_any_change_of_the_stat_key_reads_again(tmp_path: Path, cache: DigestCache,
                                                reads: Reads, change: str) -> None:
    data = os.urandom(10_000)
    path = write(tmp_path / "f", data)
    before = validators(path, cache)
    count = reads.count
    assert before is not None and validators(path, cache) == before
    assert reads.count == count
    if change == "size":
        write(path, data + b"!")
    elif change == "mtime":
        os.utime(path, ns=(OLD_NS + 1, OLD_NS + 1))
    elif change == "inode":
        os.replace(write(tmp_path / "g", data), path)
    else:
        os.chmod(path, 0o600)  # moves only the change time
    after = validators(path, cache)
    assert reads.count > count
    assert after is not None
    assert after == (before if change != "size" else ContentValidators.of(
        hashlib.sha256(data + b"!").digest()))


def test_lru_bounded_in_entries(tmp_path: Path, reads: Reads) -> None:
    cache = DigestCache(max_entries=2, use_xattr=False, settle_ns=0)
    paths = [write(tmp_path / name, name.encode() * 100) for name in "abc"]
    for path in paths:
        validators(path, cache)
    count = reads.count
    validators(paths[2], cache)
    validators(paths[1], cache)
    assert reads.count == count  # the two most recent are held
    validators(paths[0], cache)
    assert reads.count > count  # the oldest was dropped


def test_file_changed_while_read_is_thrown_away(tmp_path: Path, cache: DigestCache,
                                                reads: Reads) -> None:
    data = os.urandom(3 * digests.BLOCK_SIZE)
    path = write(tmp_path / "f", data)
    changed = []

    def rewrite_once(fd: int) -> None:
        if not changed:  # between the first and the second block
            changed.append(True)
            with open(path, "r+b") as other:
                other.seek(2 * digests.BLOCK_SIZE)
                other.write(b"\0" * 10)

    reads.hook = rewrite_once
    assert validators(path, cache) is None
    assert digests.cached_content_validators(open(path, "rb"), cache) is None  # noqa: SIM115
    reads.hook = None
    settled = validators(path, cache)
    assert settled is not None
    assert settled.sha256 == hashlib.sha256(path.read_bytes()).digest()
    assert settled.sha256 != hashlib.sha256(data).digest()


def test_recent_file_is_not_kept(tmp_path: Path, reads: Reads) -> None:
    """A version written within the settle time may be followed by a write with the same
    stat key (coarse timestamps): its digest serves one request and is not kept."""
    cache = DigestCache(use_xattr=False)  # the default settle time of 2 s
    path = tmp_path / "f"
    path.write_bytes(b"fresh" * 1000)  # mtime: now
    assert validators(path, cache) is not None
    count = reads.count
    assert validators(path, cache) is not None
    assert reads.count > count
    os.utime(path, ns=(OLD_NS, OLD_NS))
    validators(path, cache)
    count = reads.count
    validators(path, cache)
    assert reads.count == count


def test_concurrent_requests_read_once(tmp_path: Path, cache: DigestCache, reads: Reads,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "f", os.urandom(2 * digests.BLOCK_SIZE))
    waiting = []
    release = threading.Event()

    class CountedReading(digests._Reading):  # counts the requests that wait for a reading
        def __init__(self) -> None:
            super().__init__()
            real_wait = self.done.wait

            def wait(timeout: float | None = None) -> bool:
                waiting.append(True)
                return real_wait(timeout)

            self.done.wait = wait  # type: ignore[method-assign]

    monkeypatch.setattr(digests, "_Reading", CountedReading)
    reads.hook = lambda fd: release.wait(WAIT) or None
    results: list[ContentValidators | None] = []
    threads = [threading.Thread(target=lambda: results.append(validators(path, cache)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT
    while len(waiting) < 7 and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a condition, bounded
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert len(waiting) == 7
    assert len(reads.threads) == 1
    assert len(results) == 8 and len(set(results)) == 1 and results[0] is not None


# -- shared through an extended attribute -----------------------------------------------------

CHILD = """
import os, sys
def refuse(*args):
    raise OSError(5, "the file was read")  # EIO: the library answers without validators
os.preadv = os.pread = refuse
from rangewsgi.digests import DigestCache, content_validators
with open(sys.argv[1], "rb") as file:
    found = content_validators(file, DigestCache(settle_ns=0))
print(found.etag if found else "none")
"""


def run_child(path: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_xattr_shared_with_another_process(xattr_dir: Path) -> None:
    path = write(xattr_dir / "f", os.urandom(300_000))
    assert run_child(path) == "none"  # nothing stored yet, and reading is refused
    found = validators(path, DigestCache(settle_ns=0))
    assert found is not None
    stored = os.getxattr(path, XATTR_NAME)
    assert stored.endswith(found.sha256.hex().encode())
    assert run_child(path) == found.etag


def test_xattr_hit_is_kept_in_memory(xattr_dir: Path, reads: Reads) -> None:
    path = write(xattr_dir / "f", b"abc" * 1000)
    writer = DigestCache(settle_ns=0)
    found = validators(path, writer)  # stores the attribute, which moves the change time
    count = reads.count
    assert validators(path, writer) == found
    assert reads.count == count
    reader = DigestCache(settle_ns=0)
    assert validators(path, reader) == found
    assert reads.count == count


def test_stale_xattr_ignored(xattr_dir: Path, reads: Reads) -> None:
    path = write(xattr_dir / "f", b"A" * 5000)
    validators(path, DigestCache(settle_ns=0))
    stale = os.getxattr(path, XATTR_NAME)
    write(path, b"B" * 5000, OLD_NS + 10**9)  # same size, same inode, other mtime
    os.setxattr(path, XATTR_NAME, stale)  # as if nothing had updated it
    count = reads.count
    found = validators(path, DigestCache(settle_ns=0))
    assert reads.count > count
    assert found is not None and found.sha256 == hashlib.sha256(b"B" * 5000).digest()
    assert os.getxattr(path, XATTR_NAME) != stale  # replaced by the current version's


@pytest.mark.parametrize("value", [
    b"", b"garbage", b"\xff" * 300, b"rangewsgi-sha256-v1 1 2 3 4 " + b"0" * 64,
    b"rangewsgi-sha256-v1 a b c d " + b"0" * 64, b"rangewsgi-sha256-v2 1 2 3 4 5",
])
def test_malformed_xattr_ignored(xattr_dir: Path, reads: Reads, value: bytes) -> None:
    data = b"payload" * 100
    path = write(xattr_dir / "f", data)
    os.setxattr(path, XATTR_NAME, value)
    found = validators(path, DigestCache(settle_ns=0))
    assert reads.count > 0
    assert found is not None and found.sha256 == hashlib.sha256(data).digest()


@pytest.mark.parametrize("code", [errno.EPERM, errno.ENOTSUP, errno.EROFS, errno.EACCES])
def test_xattr_write_failure_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     code: int) -> None:
    def fail(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "setxattr", fail)
    cache = DigestCache(settle_ns=0)
    path = write(tmp_path / "f", b"data")
    assert validators(path, cache) == ContentValidators.of(hashlib.sha256(b"data").digest())
    assert validators(path, cache) is not None


def test_recent_file_gets_no_xattr(xattr_dir: Path) -> None:
    path = xattr_dir / "f"
    path.write_bytes(b"fresh")
    assert validators(path, DigestCache()) is not None
    with pytest.raises(OSError):
        os.getxattr(path, XATTR_NAME)


# -- the fields -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("sha-256=1", {"sha-256": 1}),
    ("sha-512=10, sha-256=1, md5=0", {"sha-512": 10, "sha-256": 1, "md5": 0}),
    ("sha-256=0,sha-512=3", {"sha-256": 0, "sha-512": 3}),
    ("  sha-256=5;q=1  ,\tunixsum=2", {"sha-256": 5, "unixsum": 2}),
    ("sha-256=11, sha-512=-1, md5=(1 2), x=?1, y=\"s\", z=1.5", {}),
    ("sha-256=3, sha-256=4", {"sha-256": 4}),  # RFC 8941 4.2.2: the last one wins
    ("", {}),
    ("sha-256", {}),  # a Boolean true, not a preference
    ("SHA-256=1", None), ("sha-256=1,", None), ("sha-256=1 sha-512=2", None),
    ("sha-256=", None), ("=1", None), ("sha-256=1;", None), ("sha-256=\u00b2", None),
    ("sha-256=1234567890123456", None), ("a=:not base64!:", None), ("a=\"open", None),
    ("a=(1 2", None), ("a=?2", None), ("a=1,,b=2", None),
])
def test_want_repr_digest(value: str, expected: dict[str, int] | None) -> None:
    assert parse_want_repr_digest(value) == (expected or {})
    if expected is None:
        assert parse_dictionary(value) is None


def test_want_repr_digest_absent() -> None:
    assert parse_want_repr_digest(None) == {}


@given(st.text(max_size=60))
def test_dictionary_parser_never_raises(value: str) -> None:
    parse_dictionary(value)
    parse_want_repr_digest(value)
    parse_repr_digest(value)
    secure_repr_digest(value)


@given(st.dictionaries(st.sampled_from(["sha-256", "sha-512", "md5", "x"]),
                       st.binary(max_size=70), max_size=4))
def test_repr_digest_round_trip(members: dict[str, bytes]) -> None:
    assert parse_repr_digest(format_repr_digest(members.items())) == members


def test_insecure_algorithms_never_passed_on() -> None:
    sha256, sha512 = hashlib.sha256(b"x").digest(), hashlib.sha512(b"x").digest()
    value = format_repr_digest([("md5", hashlib.md5(b"x").digest()), ("sha", b"1" * 20),
                                ("unixsum", b"12"), ("unixcksum", b"3"), ("adler", b"abcd"),
                                ("crc32c", b"abcd"), ("sha-256", sha256),
                                ("sha-512", sha512)])
    kept = secure_repr_digest(value)
    assert kept == format_repr_digest([("sha-256", sha256), ("sha-512", sha512)])
    assert secure_repr_digest("md5=:AAAAAAAAAAAAAAAAAAAAAA==:") is None
    assert secure_repr_digest("sha-256=:AAAA:") is None  # not 32 bytes
    assert secure_repr_digest(None) is None


def test_repr_digest_unpadded_base64_accepted() -> None:
    sha = hashlib.sha256(b"x").digest()
    unpadded = base64.b64encode(sha).decode().rstrip("=")
    assert parse_repr_digest(f"sha-256=:{unpadded}:") == {"sha-256": sha}


def test_s3_checksum_mapped_only_for_the_whole_object() -> None:
    sha = hashlib.sha256(b"object").digest()
    text = base64.b64encode(sha).decode()
    expected = format_repr_digest([("sha-256", sha)])
    assert s3_repr_digest(text, "FULL_OBJECT") == expected
    assert s3_repr_digest(text) == expected  # no ChecksumType: S3 before 2025, moto
    assert s3_repr_digest(text, "COMPOSITE") is None
    assert s3_repr_digest(f"{text}-3") is None  # a multipart upload's checksum of checksums
    assert s3_repr_digest(base64.b64encode(b"short").decode()) is None
    assert s3_repr_digest(None) is None


# -- through the middleware: digests of files, of ranged sources, of the app ----------------

class MemorySource:
    """A ranged source that carries its representation's digest."""

    def __init__(self, data: bytes, repr_digest: str | None) -> None:
        self.data, self.size = data, len(data)
        self.etag, self.last_modified = '"v1"', None
        self.repr_digest = repr_digest

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        yield self.data[start:stop]

    def __iter__(self) -> Iterator[bytes]:
        yield self.data

    def close(self) -> None:
        pass


def client_for(app: Any, **options: Any) -> Any:
    from werkzeug.test import Client

    return Client(RangeMiddleware(app, **options))


def test_source_digest_on_200_206_and_head() -> None:
    data = os.urandom(5000)
    digest = format_repr_digest([("sha-256", hashlib.sha256(data).digest())])

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return MemorySource(data, digest)

    client = client_for(app)
    full = client.get("/")
    assert full.status_code == 200 and full.data == data
    part = client.get("/", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == data[10:20]
    multi = client.get("/", headers={"Range": "bytes=0-1,-2"})
    assert multi.status_code == 206
    head = client.head("/")
    for answer in (full, part, multi, head):
        assert answer.headers.get_all("Repr-Digest") == [digest]
    unsatisfiable = client.get("/", headers={"Range": "bytes=9000-"})
    assert unsatisfiable.status_code == 416 and "Repr-Digest" not in unsatisfiable.headers


def test_app_digest_and_etag_kept(tmp_path: Path) -> None:
    """An app's own validators win: its ETag, and its Repr-Digest on the 206 and HEAD."""
    data = os.urandom(5000)
    path = write(tmp_path / "f", data)
    own = format_repr_digest([("sha-512", hashlib.sha512(data).digest())])

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("ETag", '"app-tag"'), ("Repr-Digest", own)])
        return environ["wsgi.file_wrapper"](open(path, "rb"))

    client = client_for(app, file_validators="content")
    for answer in (client.get("/", headers={"Range": "bytes=0-9"}), client.head("/"),
                   client.get("/")):
        assert answer.headers.get_all("Repr-Digest") == [own]
        assert answer.headers.get_all("ETag") == ['"app-tag"']


def test_default_true_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"x" * 1000)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(path, "rb"))

    answer = client_for(app).get("/")
    info = path.stat()
    assert answer.headers["ETag"] == f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
    assert "Repr-Digest" not in answer.headers
    assert [name for name, _ in answer.headers] == [
        "Content-Type", "ETag", "Last-Modified", "Content-Length", "Accept-Ranges"]


def test_asgi_reads_the_file_off_the_event_loop(tmp_path: Path, reads: Reads) -> None:
    import asyncio

    from rangewsgi.asgi import RangeMiddleware as ASGIRangeMiddleware

    data = os.urandom(2 * digests.BLOCK_SIZE + 5)
    path = write(tmp_path / "f", data)
    loop_threads = set()
    sent: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        loop_threads.add(threading.get_ident())
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": str(path)})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "HEAD", "scheme": "http", "path": "/", "raw_path": b"/",
             "query_string": b"", "root_path": "", "headers": [], "extensions": {}}
    middleware = ASGIRangeMiddleware(app, file_validators="content")
    asyncio.run(middleware(scope, receive, send))
    fields = dict(sent[0]["headers"])
    assert fields[b"repr-digest"].decode() == format_repr_digest(
        [("sha-256", hashlib.sha256(data).digest())])
    assert reads.count >= 3 and reads.threads and not reads.threads & loop_threads


def test_s3_full_object_checksum_becomes_repr_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from rangewsgi.sources.s3 import S3Source

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    data = os.urandom(300_000)
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="digests")
        client.put_object(Bucket="digests", Key="sha", Body=data, ChecksumAlgorithm="SHA256")
        client.put_object(Bucket="digests", Key="plain", Body=data)
        with_checksum = S3Source(client, "digests", "sha")
        expected = format_repr_digest([("sha-256", hashlib.sha256(data).digest())])
        assert with_checksum.repr_digest == expected
        assert S3Source(client, "digests", "plain").repr_digest is None

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return S3Source(client, "digests", environ["PATH_INFO"].lstrip("/"))

        part = client_for(app).get("/sha", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.data == data[100:200]
        assert part.headers["Repr-Digest"] == expected
        assert "Repr-Digest" not in client_for(app).get("/plain").headers


# -- the verifier the client tests use ------------------------------------------------------

def test_verifier(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"verified bytes")
    sha = hashlib.sha256(b"verified bytes").digest()
    good = format_repr_digest([("sha-256", sha)])
    assert digest_verify.matches(path, good)
    assert digest_verify.matches(path, f"md5=:AAAA:, {good};x=1")
    assert not digest_verify.matches(path, format_repr_digest([("sha-256", bytes(32))]))
    with pytest.raises(ValueError):
        digest_verify.matches(path, "md5=:AAAA:")

