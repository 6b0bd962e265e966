"""Ranged sources: response bodies that produce any byte range on demand.

An app returns such an object as its response body (with or without its own
``Content-Length``); the middleware asks it for exactly the ranges it needs, one
``read_range`` call per part in the order it sends them, and iterates it once for a full
``200``. Adapters for object stores, upstream HTTP servers and fsspec file systems live in
the submodules of this package, behind optional extras; importing this module imports none
of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeGuard, runtime_checkable

__all__ = ["RangedSource", "SourceChanged", "UpstreamError", "is_ranged_source"]


class SourceChanged(OSError):
    """The upstream no longer has the version a response started with: abort, never mix."""


class UpstreamError(OSError):
    """The upstream answered something other than the bytes asked for: its HTTP ``status``
    and, for object stores, its error ``code``, where there are any."""

    def __init__(self, message: str, *, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@runtime_checkable
class RangedSource(Protocol):
    """A body that can produce any byte range of a representation of ``size`` bytes.

    ``read_range(start, stop)`` yields exactly the bytes ``[start, stop)`` (``stop``
    exclusive) or raises; iterating the source yields the whole representation once;
    ``close()`` releases what it holds (connections go back to their pool). Optional
    attributes ``etag`` and ``last_modified`` (header values or None) become the response's
    validators when the app sent none.
    """

    size: int
    """The length of the whole representation, in bytes."""

    def read_range(self, start: int, stop: int) -> Iterable[bytes]:
        """Yield exactly the bytes ``[start, stop)``, or raise (``SourceChanged`` when the
        upstream changed)."""
        ...

    def __iter__(self) -> Iterator[bytes]:
        """Yield the whole representation, once."""
        ...

    def close(self) -> None:
        """Release what the source holds (connections go back to their pool)."""
        ...


def is_ranged_source(body: Any) -> TypeGuard[RangedSource]:
    """True for an object that follows the ``RangedSource`` protocol."""
    size = getattr(body, "size", None)
    return (isinstance(size, int) and not isinstance(size, bool) and size >= 0
            and callable(getattr(body, "read_range", None)))
