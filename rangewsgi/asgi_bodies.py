"""ASGI response bodies: ranges sliced out of ``http.response.body`` messages, and a
``http.response.pathsend`` file answered by seeking, every blocking read off the event loop.

The bytes come from the shared core (``bodies.RangeSlicer``, ``bodies.read_file_ranges``);
this module only turns them into ASGI messages.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from typing import Any

from .bodies import RangeSlicer, read_file_ranges
from .files import FoundFile, SeekableFile
from .multipart import Framing
from .ranges import ByteRange

__all__ = ["Message", "Send", "SlicedBody", "body_message",
           "close_file", "file_chunks", "open_file", "send_chunks", "send_pieces"]

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

# Bytes read per trip to a worker thread: a few blocks, so that a large range costs few trips
# while memory stays bounded whatever the size of the range.
_BLOCKS_PER_TRIP = 4


def body_message(body: bytes, more_body: bool) -> Message:
    """ASGI HTTP spec, "Response Body - send event"."""
    return {"type": "http.response.body", "body": body, "more_body": more_body}


async def send_pieces(send: Send, pieces: Sequence[bytes], complete: bool) -> None:
    """Send ``pieces`` as body messages; the last one completes the response if asked."""
    # "Response Body": "If more_body is set to False ... this will complete the response".
    last = len(pieces) - 1
    for index, piece in enumerate(pieces):
        await send(body_message(piece, index < last or not complete))
    if complete and not pieces:
        await send(body_message(b"", False))


class SlicedBody:
    """The ranges of a body that arrives as ``http.response.body`` messages, in order."""

    __slots__ = ("slicer",)

    def __init__(self, ranges: Sequence[ByteRange], framing: Framing | None) -> None:
        self.slicer = RangeSlicer(ranges, framing)

    def feed(self, chunk: bytes, more_body: bool) -> tuple[list[bytes], bool]:
        """The bytes this chunk yields, and whether the last needed byte is out."""
        # A body that ends before that raises TruncatedBody: the response is cut.
        pieces = self.slicer.push(chunk) if chunk else []  # empty chunks are tolerated
        if self.slicer.done:
            return pieces, True
        if not more_body:
            self.slicer.finish()
        return pieces, False


def _open(path: str) -> io.FileIO:
    # Unbuffered: one read() per block, no copy through a buffer; measured with fstat.
    return open(path, "rb", buffering=0)


async def open_file(path: str, block_size: int) -> FoundFile:
    """Open the file a path-send names, in a worker thread (closed if the wait is cancelled)."""
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, _open, path)
    try:
        file = await asyncio.shield(pending)
    except asyncio.CancelledError:
        pending.add_done_callback(_close_late_file)
        raise
    return FoundFile(file, 0, file.close, block_size)


def close_file(found: FoundFile) -> None:
    if found.close is not None:
        found.close()


def _close_late_file(done: asyncio.Future[io.FileIO]) -> None:
    if not done.cancelled() and done.exception() is None:
        done.result().close()


def _to_end(file: SeekableFile, block_size: int) -> Iterator[bytes]:
    """The file from its position to its end, as the server's own pathsend would send it."""
    while data := file.read(block_size):
        yield data


def file_chunks(found: FoundFile, length: int | None) -> Iterator[bytes]:
    """A path-send the server does not offer, read from ``found`` as the server would send
    it: ``length`` bytes (the response's Content-Length), else to the end of the file.
    Blocking: run it off the loop."""
    if length is None:
        return _to_end(found.file, found.blksize)
    window = (ByteRange(0, length, 0),)
    return read_file_ranges(found.file, found.base, window, None, found.blksize)


def _pull(chunks: Iterator[bytes], budget: int) -> tuple[list[bytes], bool]:
    """Up to about ``budget`` bytes of ``chunks`` (in a worker thread), and whether they end."""
    pieces: list[bytes] = []
    size = 0
    for piece in chunks:
        pieces.append(piece)
        size += len(piece)
        if size >= budget:
            return pieces, False
    return pieces, True


async def send_chunks(send: Send, chunks: Iterator[bytes], found: FoundFile,
                      check: Callable[[], None]) -> None:
    """Send ``chunks`` read in worker threads, then complete the response; close the file."""
    # ``check`` raises when the response must stop (the client has gone). The file closes on
    # every path, after a read still running in its thread has returned.
    loop = asyncio.get_running_loop()
    budget = found.blksize * _BLOCKS_PER_TRIP
    pending: asyncio.Future[tuple[list[bytes], bool]] | None = None
    try:
        ended = False
        while not ended:
            check()
            pending = loop.run_in_executor(None, _pull, chunks, budget)
            pieces, ended = await asyncio.shield(pending)
            pending = None
            await send_pieces(send, pieces, ended)
    finally:
        _release(pending, chunks, found)


def _release(pending: asyncio.Future[Any] | None, chunks: Iterator[bytes],
             found: FoundFile) -> None:
    """Close the generator and the file now, or once the read in flight has returned."""
    # A file closed under a reading thread, or a generator closed while it runs, would fail.

    def release(done: asyncio.Future[Any] | None = None) -> None:
        if done is not None and not done.cancelled():
            done.exception()  # retrieved: it was the cancelled reader's, nobody awaits it
        try:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        finally:
            close_file(found)

    if pending is None or pending.done():
        release()
    else:
        pending.add_done_callback(release)
