"""Body sources: multipart framing (RFC 9110 14.6, 15.3.7.2), stream slicing, file ranges,
the bounded file handed to servers."""

from __future__ import annotations

import io
import os
import random

import pytest
from support import parse_multipart

from rangewsgi.bodies import ClosingBody, RangeSlicer, read_file_ranges, slice_chunks
from rangewsgi.files import BoundedFile, TruncatedBody
from rangewsgi.multipart import Framing
from rangewsgi.ranges import ByteRange

DATA = bytes(random.Random(7).getrandbits(8) for _ in range(5000))


def br(start: int, stop: int, order: int = 0) -> ByteRange:
    return ByteRange(start, stop, order)


def test_framing_length_is_the_length_written() -> None:
    ranges = [br(500, 600, 0), br(0, 10, 1), br(4000, 5000, 2)]
    framing = Framing(ranges, len(DATA), "video/mp4")
    body = b"".join(read_file_ranges(io.BytesIO(DATA), 0, ranges, framing, 64))
    assert len(body) == framing.content_length
    parts = parse_multipart(body, framing.content_type)
    assert [p[1] for p in parts] == [DATA[500:600], DATA[0:10], DATA[4000:5000]]
    assert [p[0]["content-range"] for p in parts] == [
        "bytes 500-599/5000", "bytes 0-9/5000", "bytes 4000-4999/5000"]
    assert all(p[0]["content-type"] == "video/mp4" for p in parts)


def test_framing_uses_crlf_and_an_unquoted_boundary() -> None:
    framing = Framing([br(0, 1), br(2, 3, 1)], 4, "text/plain")
    assert '"' not in framing.content_type
    assert len(framing.boundary) == 32 and framing.boundary.isalnum()
    assert framing.heads[0].startswith(b"--" + framing.boundary.encode() + b"\r\n")
    assert framing.heads[1].startswith(b"\r\n--")
    assert framing.heads[0].endswith(b"\r\n\r\n")
    assert framing.tail == b"\r\n--" + framing.boundary.encode() + b"--\r\n"
    assert b"\n" not in framing.heads[0].replace(b"\r\n", b"")
    assert Framing([br(0, 1)], 4, None).boundary != framing.boundary


@pytest.mark.parametrize("content_type", ["text/plain\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b"])
def test_content_type_with_control_characters_is_left_out_of_parts(content_type: str) -> None:
    framing = Framing([br(0, 1), br(2, 3, 1)], 4, content_type)
    assert b"Content-Type" not in framing.heads[0]
    assert b"Evil" not in b"".join(framing.heads)


def slice_all(chunks: list[bytes], ranges: list[ByteRange], framing: Framing | None) -> bytes:
    return b"".join(slice_chunks(iter(chunks), RangeSlicer(ranges, framing)))


@pytest.mark.parametrize("seed", range(40))
def test_slicing_any_chunking_gives_the_same_bytes(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(DATA)), rng.randint(0, 60)))
    chunks = [DATA[a:b] for a, b in zip([0, *cuts], [*cuts, len(DATA)], strict=True)]
    for _ in range(rng.randint(0, 5)):
        chunks.insert(rng.randint(0, len(chunks)), b"")  # empty chunks are tolerated
    points = sorted(rng.sample(range(len(DATA) + 1), 2 * rng.randint(1, 4)))
    ranges = [br(points[i], points[i + 1], i) for i in range(0, len(points), 2)
              if points[i] < points[i + 1]]
    if not ranges:
        return
    single = slice_all(chunks, ranges[:1], None)
    assert single == DATA[ranges[0].start:ranges[0].stop]
    framing = Framing(ranges, len(DATA), "x/y")
    body = slice_all(chunks, ranges, framing)
    assert len(body) == framing.content_length
    assert [p[1] for p in parse_multipart(body, framing.content_type)] == [
        DATA[r.start:r.stop] for r in ranges]


def test_slicing_stops_reading_after_the_last_needed_byte() -> None:
    pulled = []

    def source():  # type: ignore[no-untyped-def]
        for i in range(0, len(DATA), 100):
            pulled.append(i)
            yield DATA[i:i + 100]

    assert slice_all(source(), [br(150, 250)], None) == DATA[150:250]  # type: ignore[arg-type]
    assert pulled == [0, 100, 200]


def test_a_short_stream_raises_instead_of_sending_short_data() -> None:
    with pytest.raises(TruncatedBody):
        slice_all([DATA[:100]], [br(50, 200)], None)


def test_file_ranges_seek_and_never_read_skipped_bytes() -> None:
    class Recording(io.BytesIO):
        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.reads: list[tuple[int, int]] = []

        def read(self, size: int | None = -1) -> bytes:
            pos = self.tell()
            data = super().read(size)
            self.reads.append((pos, len(data)))
            return data

    f = Recording(DATA)
    out = b"".join(read_file_ranges(f, 0, [br(4900, 5000)], None, 64))
    assert out == DATA[4900:]
    assert sum(n for _, n in f.reads) == 100 and f.reads[0][0] == 4900


def test_file_ranges_respect_the_starting_offset() -> None:
    f = io.BytesIO(b"HEADER" + DATA)
    assert b"".join(read_file_ranges(f, 6, [br(0, 10)], None, 4)) == DATA[:10]


def test_truncated_file_raises() -> None:
    with pytest.raises(TruncatedBody):
        b"".join(read_file_ranges(io.BytesIO(DATA[:100]), 0, [br(50, 200)], None, 64))


def test_bounded_file_reads_exactly_its_window(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f"
    path.write_bytes(DATA)
    closed = []
    with open(path, "rb") as f:
        bounded = BoundedFile(f, 1000, 1100, lambda: closed.append(1))
        # gunicorn's sendfile starts at the OS offset of the descriptor.
        assert os.lseek(bounded.fileno(), 0, os.SEEK_CUR) == 1000
        assert bounded.read(30) == DATA[1000:1030]
        assert bounded.read() == DATA[1030:1100]
        assert bounded.read() == b""
        # waitress measures the rest with tell() / seek(0, 2) / seek(back).
        assert bounded.seek(1000) == 1000
        start = bounded.tell()
        bounded.seek(0, os.SEEK_END)
        assert bounded.tell() - start == 100
        bounded.seek(start)
        assert bounded.read(10_000) == DATA[1000:1100]
        bounded.close()
        bounded.close()
    assert closed == [1]


def test_bounded_file_over_a_truncated_file_raises(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f"
    path.write_bytes(DATA[:1050])
    with open(path, "rb") as f:
        bounded = BoundedFile(f, 1000, 1100, None)
        assert bounded.read(50) == DATA[1000:1050]
        with pytest.raises(TruncatedBody):
            bounded.read(50)


def test_bounded_file_without_fileno() -> None:
    bounded = BoundedFile(io.BytesIO(DATA), 0, 10, None)
    with pytest.raises(io.UnsupportedOperation):
        bounded.fileno()


def test_closing_body_closes_once_on_exhaustion_and_close() -> None:
    calls = []
    body = ClosingBody(iter([b"a", b"b"]), lambda: calls.append(1))
    assert list(body) == [b"a", b"b"]
    assert calls == [1]
    body.close()
    assert calls == [1]
    early = ClosingBody(iter([b"a", b"b"]), lambda: calls.append(2))
    next(early)
    early.close()  # the client went away
    early.close()
    assert calls == [1, 2]
