"""Range bodies: read by seeking in a file, or sliced out of a stream of chunks.

Both write single ranges and multipart framing; both keep memory flat at any body size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from .files import SeekableFile, TruncatedBody
from .multipart import Framing
from .ranges import ByteRange

if TYPE_CHECKING:
    from .sources import RangedSource

__all__ = ["ClosingBody", "RangeSlicer", "exactly", "read_file_ranges", "read_source_ranges",
           "slice_chunks"]


class ClosingBody:
    """A WSGI response iterable over ``chunks`` that closes the inner body exactly once.

    PEP 3333: the server calls ``close()``; the inner iterable's ``close()`` must run on
    success, on error and on client disconnect. It also runs as soon as ``chunks`` is
    exhausted (or at once, ``closed_early``), so that resources are released once the last
    needed byte is out. An error the inner ``close()`` raises then is kept and raised by the
    server's ``close()``, once, as it would be without the middleware: the answer does not
    depend on the inner body any more, and still goes out whole.
    """

    __slots__ = ("_chunks", "_close", "_closed", "_error")

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None] | None) -> None:
        self._chunks = chunks
        self._close = close
        self._closed = False
        self._error: Exception | None = None

    @classmethod
    def closed_early(cls, chunks: Iterator[bytes], close: Callable[[], None]) -> ClosingBody:
        """``chunks``, written without the inner body, which is closed now, unread."""
        body = cls(chunks, close)
        body._close_early()
        return body

    def __iter__(self) -> ClosingBody:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            pass
        self._close_early()  # outside the handler: an error it keeps has no StopIteration
        raise StopIteration

    def _close_early(self) -> None:
        """Close before the server does; an error waits for the server's ``close()``."""
        if self._closed:
            return
        try:
            self.close()
        except Exception as exc:  # raised again by close(), where the server expects it
            self._error = exc

    def close(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error
        if self._closed:
            return
        self._closed = True
        try:
            chunks_close = getattr(self._chunks, "close", None)
            if chunks_close is not None:
                chunks_close()
        finally:
            if self._close is not None:
                self._close()


def read_file_ranges(file: SeekableFile, base: int, ranges: Sequence[ByteRange],
                     framing: Framing | None, blksize: int) -> Iterator[bytes]:
    """Seek to each range and read it in blocks; skipped bytes are never read."""
    for index, byte_range in enumerate(ranges):
        head = framing.heads[index] if framing is not None else b""
        file.seek(base + byte_range.start)
        remaining = byte_range.stop - byte_range.start
        while remaining:
            data = file.read(min(blksize, remaining))
            if not data:
                raise TruncatedBody(f"file ended {remaining} bytes before the range end")
            if len(data) > remaining:
                data = data[:remaining]  # a read() that over-returns: never past the range
            remaining -= len(data)
            if head:
                data, head = head + data, b""
            yield data
    if framing is not None:
        yield framing.tail


class RangeSlicer:
    """Push chunks of the full body in order; get back the bytes of the response.

    ``ranges`` must be sorted and disjoint (a stream cannot go back). Used both for iterable
    bodies and for the PEP 3333 ``write()`` callable.
    """

    __slots__ = ("_end", "_index", "_pos", "bypass", "framing", "ranges")

    def __init__(self, ranges: Sequence[ByteRange], framing: Framing | None) -> None:
        self.ranges = ranges
        self.framing = framing
        self._pos = 0  # offset of the next byte pushed, in the representation
        self._index = 0  # the range being filled
        self._end = ranges[-1].stop
        self.bypass = False  # set when the response was replaced (exc_info after commit)

    @property
    def done(self) -> bool:
        return self._index >= len(self.ranges)

    def push(self, chunk: bytes) -> list[bytes]:
        if self.bypass:
            return [chunk]
        size = len(chunk)
        chunk_start = self._pos
        chunk_stop = chunk_start + size
        self._pos = chunk_stop
        out: list[bytes] = []
        ranges = self.ranges
        framing = self.framing
        while self._index < len(ranges):
            current = ranges[self._index]
            if current.start >= chunk_stop:
                break
            if current.stop > chunk_start:
                lo = max(current.start, chunk_start) - chunk_start
                hi = min(current.stop, chunk_stop) - chunk_start
                if framing is not None and current.start >= chunk_start:
                    out.append(framing.heads[self._index])
                out.append(chunk if lo == 0 and hi == size else chunk[lo:hi])
            if current.stop > chunk_stop:
                break
            self._index += 1
            if framing is not None and self._index == len(ranges):
                out.append(framing.tail)
        return out

    def finish(self) -> None:
        """Raise unless every needed byte arrived (a short body must abort the response)."""
        if not self.done and not self.bypass:
            raise TruncatedBody(f"body ended at byte {self._pos}, before byte {self._end}")


def slice_chunks(chunks: Iterable[bytes], slicer: RangeSlicer) -> Iterator[bytes]:
    """Stream the ranges out of ``chunks``; stop reading once the last needed byte is out."""
    if slicer.done:
        return
    for chunk in chunks:
        if not chunk:
            continue
        yield from slicer.push(chunk)
        if slicer.done:
            return
    slicer.finish()


def exactly(chunks: Iterable[bytes], count: int, head: bytes = b"") -> Iterator[bytes]:
    """``count`` bytes from ``chunks`` (``head`` before the first); fewer or more aborts.

    A source that yields more than it was asked for has not sent the range asked for (an
    upstream that ignored Range, say): its bytes are not sent under a label they do not fit.
    """
    iterator = iter(chunks)
    remaining = count
    try:
        for chunk in iterator:
            if not chunk:
                continue
            if len(chunk) > remaining:
                raise TruncatedBody(f"source gave more than the {count} bytes asked for")
            remaining -= len(chunk)
            if head:
                chunk, head = head + chunk, b""
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if remaining:
        raise TruncatedBody(f"source ended {remaining} bytes before the {count} asked for")
    if head:
        yield head  # an empty range cannot happen; kept for a zero-byte count


def read_source_ranges(source: RangedSource, ranges: Sequence[ByteRange],
                       framing: Framing | None) -> Iterator[bytes]:
    """One ``read_range`` call per range, in the order the ranges are sent."""
    for index, byte_range in enumerate(ranges):
        head = framing.heads[index] if framing is not None else b""
        yield from exactly(source.read_range(byte_range.start, byte_range.stop),
                           byte_range.stop - byte_range.start, head)
    if framing is not None:
        yield framing.tail
