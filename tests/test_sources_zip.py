"""``rangewsgi.sources.zip.ZipSource``: a ZIP archive laid out from names and sizes, any range.

The archive is checked by Python's ``zipfile`` (every member's bytes), Info-ZIP ``unzip -t``,
libarchive ``bsdtar -tf`` and 7-Zip ``7z t`` (Debian packages ``unzip``, ``libarchive-tools``,
``p7zip-full``), also with a member over 4 GiB (a sparse file: ZIP64) and with more than 65535
entries; every range against the whole archive; reads counted with member sources that record
their ``read_range`` calls. The examples that serve it to real clients (``curl -C -``,
``aria2c -x 8``, Chromium) are tests/test_zip_clients.py.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from inprocess import call, environ_for

from rangewsgi import RangeMiddleware
from rangewsgi.sources import SourceChanged, UpstreamError
from rangewsgi.sources import zip as zipsource
from rangewsgi.sources.zip import ZipSource

MTIME_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20Z, odd seconds: DOS keeps 2 s
BIG = 4 * 1024**3 + 12_345  # a member beyond ZIP's 4-byte sizes
TOOL_TIMEOUT = 300


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is not installed")
        pytest.skip(f"{tool} is not installed")
    return found


def write_tree(root: Path) -> dict[str, bytes]:
    """Files of several kinds, all with the same modification time; their arcnames."""
    rng = random.Random(21)
    contents = {
        "readme.txt": b"hello, zip\n",
        "empty": b"",
        "photos/2024/one.bin": rng.randbytes(300_000),
        "photos/two.bin": rng.randbytes(70_001),
        "caf\u00e9/\u65e5\u672c.txt": b"non-ASCII names: bit 11",
        "signatures.bin": b"PK\x07\x08PK\x01\x02PK\x05\x06" * 100,  # ZIP markers as data
    }
    for name, data in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(MTIME_NS, MTIME_NS))
    return contents


def members_of(root: Path, names: Any) -> list[tuple[str, str]]:
    return [(name, str(root / name)) for name in sorted(names)]


def whole(source: Any) -> bytes:
    return b"".join(source)


def read(source: Any, start: int, stop: int) -> bytes:
    return b"".join(source.read_range(start, stop))


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    zipsource.crc_cache_clear()
    yield
    zipsource.crc_cache_clear()


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "tree"
    return root, write_tree(root)


class Recording:
    """A ranged source over bytes that records each ``read_range`` call."""

    def __init__(self, data: bytes, etag: str | None = '"v1"',
                 last_modified: str | None = "Tue, 14 Nov 2023 22:13:20 GMT",
                 url: str | None = None) -> None:
        self.data, self.size, self.url = data, len(data), url
        self.etag, self.last_modified = etag, last_modified
        self.calls: list[tuple[int, int]] = []
        self.closed = 0

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        self.calls.append((start, stop))
        for at in range(start, stop, 4096):
            yield self.data[at:min(stop, at + 4096)]

    def __iter__(self) -> Iterator[bytes]:
        return self.read_range(0, self.size)

    def close(self) -> None:
        self.closed += 1


def recorded(count: int = 4, size: int = 50_000) -> list[Recording]:
    rng = random.Random(count * size)
    return [Recording(rng.randbytes(size), etag=f'"m{i}"', url=f"memory://m{i}")
            for i in range(count)]


# -- what the tools say --


def check_with_zipfile(path: Path, expected: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(expected)
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.flag_bits & 0x0808 == 0x0808  # data descriptor, UTF-8 name
            assert archive.read(info) == expected[info.filename]


def test_zipfile_reads_every_member(tree: tuple[Path, dict[str, bytes]],
                                    tmp_path: Path) -> None:
    root, contents = tree
    source = ZipSource(members_of(root, contents))
    data = whole(source)
    assert len(data) == source.size
    out = tmp_path / "out.zip"
    out.write_bytes(data)
    check_with_zipfile(out, contents)
    with zipfile.ZipFile(out) as archive:
        moment = datetime.fromtimestamp(MTIME_NS // 10**9, timezone.utc)
        expected_time = (*moment.timetuple()[:5], moment.second // 2 * 2)
        assert {info.date_time for info in archive.infolist()} == {expected_time}
        assert {info.external_attr >> 16 for info in archive.infolist()} == {0o100644}
    assert source.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert source.etag is not None and source.etag.startswith('"zip-')


@pytest.mark.parametrize("command", [["unzip", "-t"], ["bsdtar", "-tf"], ["7z", "t"]],
                         ids=["unzip", "bsdtar", "7z"])
def test_tools_accept_the_archive(tree: tuple[Path, dict[str, bytes]], tmp_path: Path,
                                  command: list[str]) -> None:
    require(command[0])
    root, contents = tree
    out = tmp_path / "out.zip"
    out.write_bytes(whole(ZipSource(members_of(root, contents))))
    done = subprocess.run([*command, str(out)], capture_output=True, timeout=TOOL_TIMEOUT,
                          check=False, env={**os.environ, "LC_ALL": "C.UTF-8"})
    report = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    assert done.returncode == 0, report
    if command[0] == "bsdtar":
        assert sorted(report.splitlines()) == sorted(contents)
    if command[0] == "unzip":
        assert "No errors detected" in report and report.count(" OK") == len(contents)
    if command[0] == "7z":
        assert "Everything is Ok" in report and f"Files: {len(contents)}" in report


def test_bsdtar_streams_the_archive(tree: tuple[Path, dict[str, bytes]],
                                    tmp_path: Path) -> None:
    """A reader that never seeks (libarchive from a pipe) finds each member's end too."""
    require("bsdtar")
    root, contents = tree
    data = whole(ZipSource(members_of(root, contents)))
    target = tmp_path / "x"
    target.mkdir()
    done = subprocess.run(["bsdtar", "-xf", "-", "-C", str(target)], input=data,
                          capture_output=True, timeout=TOOL_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    for name, expected in contents.items():
        assert (target / name).read_bytes() == expected


# -- the layout: sizes, names, ZIP64 --


def test_size_is_known_before_any_member_is_read() -> None:
    sources = recorded()
    archive = ZipSource([(f"m{i}.bin", s) for i, s in enumerate(sources)])
    assert all(s.calls == [] for s in sources)
    assert len(whole(archive)) == archive.size
    # The whole archive reads each member once: CRC-32s are computed on the way.
    assert [s.calls for s in sources] == [[(0, s.size)] for s in sources]


@pytest.mark.parametrize("name", ["", "/etc/passwd", "a/../b", "..", "a\\b", "a//b", "dir/",
                                  "./a", "C:/x", "a\0b", "\udcff"])
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        ZipSource([(name, Recording(b"x"))])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        ZipSource([("a", Recording(b"x")), ("b", Recording(b"y")), ("a", Recording(b"z"))])


@pytest.mark.parametrize("mtime, expected", [
    (0, (1980, 1, 1, 0, 0, 0)),
    (7_000_000_000, (2107, 12, 31, 23, 59, 58)),
    (1_000_000_001, (2001, 9, 9, 1, 46, 40)),
])
def test_dos_times_are_clamped(tmp_path: Path, mtime: int,
                               expected: tuple[int, ...]) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"data")
    os.utime(path, (mtime, mtime))
    with zipfile.ZipFile(_as_file(ZipSource([("f", str(path))]), tmp_path)) as archive:
        assert archive.infolist()[0].date_time == expected


def _as_file(source: ZipSource, where: Path) -> Path:
    out = where / "archive.zip"
    out.write_bytes(whole(source))
    return out


def test_more_than_65535_entries_use_the_zip64_end_record(tmp_path: Path) -> None:
    count = 70_000
    members = [(f"d/{i:05}", Recording(bytes([i % 251]) * (i % 3))) for i in range(count)]
    source = ZipSource(members)
    data = whole(source)
    assert data.rfind(b"PK\x06\x06") > 0 and data.rfind(b"PK\x06\x07") > 0
    assert struct.unpack("<HH", data[-14:-10]) == (0xFFFF, 0xFFFF)  # entries: see ZIP64
    out = tmp_path / "many.zip"
    out.write_bytes(data)
    with zipfile.ZipFile(out) as archive:
        infos = archive.infolist()
        assert len(infos) == count
        for i in (0, 1, 2, 65_534, 65_535, 69_999):
            assert archive.read(infos[i]) == bytes([i % 251]) * (i % 3)
    require("7z")
    done = subprocess.run(["7z", "t", str(out)], capture_output=True, timeout=TOOL_TIMEOUT,
                          check=False)
    assert done.returncode == 0 and f"Files: {count}".encode() in done.stdout, done.stdout[-2000:]


def write_sparse(source: ZipSource, out: Path) -> None:
    """The archive into ``out``, seeking over blocks of zeros (the file stays sparse)."""
    with open(out, "wb") as file:
        for chunk in source:
            if not chunk.strip(b"\0"):
                file.seek(len(chunk), os.SEEK_CUR)
            else:
                file.write(chunk)
        file.truncate()


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ZipSource]:
    """A 4 GiB sparse member between two small ones: ZIP64 sizes, offsets and end records."""
    work = tmp_path_factory.mktemp("zip64")
    (work / "head.txt").write_bytes(b"before the big one\n")
    with open(work / "big.bin", "wb") as file:
        file.truncate(BIG)
        file.seek(BIG - 5)
        file.write(b"tail!")
    (work / "tail.txt").write_bytes(b"after the big one\n")
    source = ZipSource([(n, str(work / n)) for n in ("head.txt", "big.bin", "tail.txt")],
                       block_size=16 * 1024 * 1024)
    out = work / "big.zip"
    write_sparse(source, out)
    return out, source


@pytest.mark.slow
def test_zip64_member_with_zipfile(big_archive: tuple[Path, ZipSource]) -> None:
    out, source = big_archive
    assert out.stat().st_size == source.size > 0xFFFFFFFF
    with zipfile.ZipFile(out) as archive:
        head, big, tail = archive.infolist()
        assert (big.file_size, big.compress_size) == (BIG, BIG)
        assert tail.header_offset > 0xFFFFFFFF
        assert archive.read(head) == b"before the big one\n"
        assert archive.read(tail) == b"after the big one\n"
        with archive.open(big) as member:  # checks the local header against the directory
            assert member.read(1 << 20) == bytes(1 << 20)
    # The big member's CRC-32, computed while it was sent, is the one of its bytes (7z t and
    # unzip -t check it against the data too; reading 4 GiB through zipfile takes 20 s).
    assert zlib.crc32(b"tail!", _zeros_crc(BIG - 5)) == big.CRC


def _zeros_crc(count: int) -> int:
    crc, block = 0, bytes(1 << 24)
    while count:
        take = min(count, len(block))
        crc, count = zlib.crc32(memoryview(block)[:take], crc), count - take
    return crc


@pytest.mark.slow
@pytest.mark.parametrize("command", [["7z", "t"], ["unzip", "-t"], ["bsdtar", "-tvf"]],
                         ids=["7z", "unzip", "bsdtar"])
def test_zip64_member_with_tools(big_archive: tuple[Path, ZipSource],
                                 command: list[str]) -> None:
    require(command[0])
    out, _source = big_archive
    done = subprocess.run([*command, str(out)], capture_output=True, timeout=TOOL_TIMEOUT,
                          check=False)
    report = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    assert done.returncode == 0, report
    if command[0] == "7z":  # it names no member when all is well
        assert "Everything is Ok" in report and "Files: 3" in report
    else:
        assert "big.bin" in report and "tail.txt" in report
    if command[0] == "bsdtar":
        assert str(BIG) in report


# -- ranges --


def test_every_range_matches_the_whole(tree: tuple[Path, dict[str, bytes]]) -> None:
    root, contents = tree
    sources = recorded(3, 20_000)
    members: list[tuple[str, Any]] = members_of(root, contents)
    members += [(f"sources/{i}", s) for i, s in enumerate(sources)]
    archive = ZipSource(members)
    data = whole(archive)
    rng = random.Random(2024)
    edges = [segment.offset for segment in archive._segments]  # every structure's start
    starts = [max(0, e + d) for e in edges for d in (-1, 0, 1)]
    cases = [(s, min(archive.size, s + rng.randint(1, 70_000))) for s in starts
             if s < archive.size]
    for _ in range(300):
        start = rng.randrange(archive.size)
        cases.append((start, rng.randint(start + 1, archive.size)))
    for start, stop in cases:
        fresh = ZipSource(members)  # each with no CRC-32 learnt yet
        assert read(fresh, start, stop) == data[start:stop], (start, stop)
        assert read(archive, start, stop) == data[start:stop], (start, stop)


def test_a_range_inside_a_member_reads_only_that_member() -> None:
    sources = recorded()
    archive = ZipSource([(f"m{i}.bin", s) for i, s in enumerate(sources)])
    data_start = archive._members[2].data_offset
    assert read(archive, data_start + 1000, data_start + 21_000) == sources[2].data[1000:21_000]
    assert [s.calls for s in sources] == [[], [], [(1000, 21_000)], []]


def test_a_range_over_a_local_header_needs_no_crc() -> None:
    sources = recorded()
    archive = ZipSource([(f"m{i}.bin", s) for i, s in enumerate(sources)])
    second = archive._members[1]
    read(archive, second.offset, second.data_offset + 10)  # m1's local header, its start
    assert [s.calls for s in sources] == [[], [(0, 10)], [], []]
    # A data descriptor holds the CRC-32: the member is read whole for it, once.
    read(archive, second.offset - 20, second.offset)
    read(archive, second.offset - 20, second.offset)
    size = sources[0].size
    assert sources[0].calls == [(size - 4, size), (0, size), (size - 4, size)]


def test_the_central_directory_reads_each_crc_once() -> None:
    sources = recorded()
    members = [(f"m{i}.bin", s) for i, s in enumerate(sources)]
    archive = ZipSource(members)
    tail = archive.size - 200  # inside the central directory
    read(archive, tail, archive.size)
    assert [s.calls for s in sources] == [[(0, s.size)] for s in sources]
    read(ZipSource(members), 0, archive.size)  # another archive, the same versions: cached
    assert [s.calls for s in sources] == [[(0, s.size)] * 2 for s in sources]
    read(ZipSource(members), tail, archive.size)
    assert [len(s.calls) for s in sources] == [2] * len(sources)


def test_given_crcs_need_no_read(tmp_path: Path) -> None:
    sources = recorded()
    crcs = [zlib.crc32(s.data) for s in sources]
    archive = ZipSource([(f"m{i}.bin", s, c)
                         for i, (s, c) in enumerate(zip(sources, crcs, strict=True))])
    data = read(archive, archive._cd_offset, archive.size)
    assert all(s.calls == [] for s in sources)
    path = tmp_path / "f.bin"
    path.write_bytes(b"file bytes")
    lying = ZipSource([("f.bin", str(path), 0x12345678)])  # trusted: the file is not read
    assert struct.pack("<I", 0x12345678) in read(lying, lying._cd_offset, lying.size)
    assert data.count(b"PK\x01\x02") == len(sources)


def test_equal_etags_of_other_resources_share_no_crc(tmp_path: Path) -> None:
    """RFC 9110 8.8.3: an entity-tag tells versions of one resource apart, not resources."""
    one, two = Recording(b"first"), Recording(b"other")  # both '"v1"', neither says what
    named = [Recording(b"third", url="memory://a"), Recording(b"forth", url="memory://b")]
    for members in ([("1", one), ("2", two)], [("3", named[0]), ("4", named[1])]):
        with zipfile.ZipFile(_as_file(ZipSource(members), tmp_path)) as archive:
            assert archive.testzip() is None
    for source in (one, two, *named):  # and one at a time, in archives of their own
        with zipfile.ZipFile(_as_file(ZipSource([("x", source)]), tmp_path)) as archive:
            assert archive.testzip() is None


def test_a_source_without_strong_etag_gives_no_etag() -> None:
    assert ZipSource([("a", Recording(b"x", etag=None))]).etag is None
    assert ZipSource([("a", Recording(b"x", etag='W/"weak"'))]).etag is None
    assert ZipSource([("a", Recording(b"x"))]).etag is not None


class Lying(Recording):
    """Yields ``extra`` bytes more (or fewer, if negative) than asked for."""

    def __init__(self, data: bytes, extra: int) -> None:
        super().__init__(data)
        self.extra = extra

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        yield self.data[start:stop + self.extra] + b"!" * max(0, stop + self.extra - self.size)


@pytest.mark.parametrize("extra", [1, -1])
def test_a_member_source_giving_other_lengths_is_refused(extra: int) -> None:
    archive = ZipSource([("a", Recording(b"a" * 100)), ("b", Lying(b"b" * 100, extra))])
    data_start = archive._members[1].data_offset
    with pytest.raises(UpstreamError):
        read(archive, data_start, data_start + 50)
    sent = []
    with pytest.raises(UpstreamError):
        for chunk in archive:
            sent.append(chunk)
    right = whole(ZipSource([("a", Recording(b"a" * 100)), ("b", Recording(b"b" * 100))]))
    out = b"".join(sent)
    assert out == right[:len(out)] and len(out) < data_start + 100  # a right prefix, cut


def test_close_closes_member_sources_once() -> None:
    sources = recorded(2)
    archive = ZipSource([(f"m{i}", s) for i, s in enumerate(sources)])
    archive.close()
    archive.close()
    assert [s.closed for s in sources] == [1, 1]
    with pytest.raises(ValueError):
        archive.read_range(0, 10)


# -- determinism and versions --


def test_same_members_give_the_same_bytes_and_etag(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    contents = write_tree(one)
    write_tree(two)
    first = ZipSource(members_of(one, contents))
    again = ZipSource(members_of(one, contents))
    copy = ZipSource(members_of(two, contents))
    assert whole(first) == whole(again) == whole(copy)
    assert first.etag == again.etag == copy.etag and first.etag is not None
    touched = two / "readme.txt"
    os.utime(touched, ns=(MTIME_NS + 1, MTIME_NS + 1))  # the same DOS time, a new version
    assert ZipSource(members_of(two, contents)).etag != first.etag


def test_a_member_changed_during_the_response_aborts_it(
        tree: tuple[Path, dict[str, bytes]]) -> None:
    root, contents = tree
    archive = ZipSource(members_of(root, contents), block_size=4096)
    chunks = iter(archive)
    first = next(chunks)
    assert first.startswith(b"PK\x03\x04")
    later = root / "signatures.bin"  # after caf\u00e9/... and empty in the sorted order
    later.write_bytes(b"new!" * 300)
    with pytest.raises(SourceChanged):
        for _ in chunks:
            pass


def test_a_file_shortened_in_place_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100_000)
    archive = ZipSource([("f.bin", str(path))], block_size=1000)
    chunks = iter(archive)
    next(chunks)
    next(chunks)
    with open(path, "r+b") as file:
        file.truncate(5000)
    os.utime(path, ns=(archive._members[0].stat_key[3],) * 2)  # type: ignore[index]
    with pytest.raises(SourceChanged):
        for _ in chunks:
            pass


def test_the_middleware_cuts_a_response_whose_member_changed(
        tree: tuple[Path, dict[str, bytes]]) -> None:
    root, contents = tree
    members = members_of(root, contents)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/zip")])
        return ZipSource(members, block_size=4096)

    ranged = RangeMiddleware(app)
    before = call(ranged)
    assert before.code == 200 and before.header("Content-Type") == "application/zip"
    etag = before.header("ETag")
    assert etag is not None and etag == ZipSource(members).etag
    statuses: list[str] = []
    body = ranged(environ_for("GET", {"Range": "bytes=0-"}),
                  lambda status, headers, exc_info=None: statuses.append(status))
    chunks = iter(body)
    sent = next(chunks)
    assert statuses == ["206 Partial Content"] and before.body.startswith(sent)
    (root / "photos/two.bin").write_bytes(b"replaced")  # during the response
    with pytest.raises(SourceChanged):
        for chunk in chunks:
            sent += chunk
    body.close()
    assert before.body.startswith(sent) and len(sent) < len(before.body)  # a prefix, cut
    # Between two requests: another ETag, so If-Range with the old one gets it all (200).
    after = call(ranged, headers={"Range": "bytes=100-", "If-Range": etag})
    assert after.code == 200 and after.header("ETag") not in (None, etag)
    with zipfile.ZipFile(io.BytesIO(after.body)) as archive:
        assert archive.read("photos/two.bin") == b"replaced"
