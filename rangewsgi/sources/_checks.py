"""Checks every ranged source makes: the range asked for, an upstream's ``Content-Range``,
and an upstream's errors as ``OSError`` subclasses."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from . import SourceChanged, UpstreamError

__all__ = ["CONTENT_RANGE", "check_content_range", "check_range", "translated"]

CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
"""RFC 9110 14.4: ``bytes first-last/complete-length`` (the length may be ``*``)."""


def check_range(where: str, closed: bool, start: int, stop: int, size: int) -> None:
    """Raise ``ValueError`` for a read from a closed source or outside ``[0, size)``."""
    if closed:
        raise ValueError(f"{where}: read from a closed source")
    if not 0 <= start < stop <= size:
        raise ValueError(f"range [{start}, {stop}) outside 0..{size}")


def check_content_range(where: str, value: str, start: int, stop: int, size: int, *,
                        field: str = "Content-Range", status: int | None = None) -> None:
    """Raise unless ``value`` (RFC 9110 14.4) is bytes ``[start, stop)`` of ``size`` bytes:
    ``SourceChanged`` for another complete length, else ``UpstreamError``."""
    match = CONTENT_RANGE.fullmatch(value)
    if match is None:
        raise UpstreamError(f"{where}: {field} {value!r}", status=status)
    if match[3] != "*" and int(match[3]) != size:
        raise SourceChanged(f"{where}: size is now {match[3]}, was {size}")
    if (int(match[1]), int(match[2])) != (start, stop - 1):
        raise UpstreamError(f"{where}: asked for bytes {start}-{stop - 1}, got "
                            f"{match[1]}-{match[2]}", status=status)


@contextmanager
def translated(where: str, convert: Callable[[str, Exception], OSError | None]
               ) -> Iterator[None]:
    """An exception raised inside as the ``OSError`` that ``convert(where, exc)`` gives it;
    one that ``convert`` maps to None goes on unchanged."""
    try:
        yield
    except Exception as exc:
        error = convert(where, exc)
        if error is None:
            raise
        raise error from exc
