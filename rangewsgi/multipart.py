"""``multipart/byteranges`` framing (RFC 9110 14.6 and 15.3.7.2).

The same object that writes the delimiters and part headers also computes the total
``Content-Length``, so the two can never disagree.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

from .ranges import ByteRange

__all__ = ["Framing", "content_range"]

# Header values that may be copied into a part header: field-vchar, SP and HTAB only
# (RFC 9110 5.5). Anything else (CR, LF, NUL) could forge part headers, so it is left out.
_SAFE_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def content_range(byte_range: ByteRange, complete_length: int) -> str:
    """A Content-Range value, ``bytes first-last/complete`` (RFC 9110 14.4)."""
    return f"bytes {byte_range.start}-{byte_range.stop - 1}/{complete_length}"


class Framing:
    """Delimiters and part headers for one multipart/byteranges body."""

    __slots__ = ("boundary", "complete_length", "content_length", "heads", "part_type",
                 "ranges", "tail")

    def __init__(self, ranges: Sequence[ByteRange], complete_length: int,
                 content_type: str | None, boundary: str | None = None) -> None:
        # 14.6: the boundary is sent unquoted ("some existing implementations handle a quoted
        # boundary string incorrectly"); 32 hex digits never occur by chance in the parts.
        self.boundary = boundary or secrets.token_hex(16)
        delimiter = b"--" + self.boundary.encode("ascii")
        type_line = b""
        if content_type is not None and _SAFE_VALUE.fullmatch(content_type):
            # 15.3.7.2: each body part SHOULD carry the Content-Type of the representation.
            type_line = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n"
        self.ranges = tuple(ranges)
        self.complete_length = complete_length
        self.part_type = content_type
        self.heads = [
            (b"\r\n" if index else b"") + delimiter + b"\r\n" + type_line
            + b"Content-Range: " + content_range(r, complete_length).encode("ascii")
            + b"\r\n\r\n"
            for index, r in enumerate(self.ranges)
        ]
        self.tail = b"\r\n" + delimiter + b"--\r\n"
        self.content_length = (sum(map(len, self.heads)) + len(self.tail)
                               + sum(r.stop - r.start for r in self.ranges))

    @property
    def content_type(self) -> str:
        """The top-level Content-Type (15.3.7.2: with its required boundary parameter)."""
        return "multipart/byteranges; boundary=" + self.boundary

    def ascending(self) -> Framing:
        """The same parts and boundary in ascending byte order, for bodies that cannot seek."""
        ordered = sorted(self.ranges, key=lambda r: r.start)
        if ordered == list(self.ranges):
            return self
        return Framing(ordered, self.complete_length, self.part_type, self.boundary)
