"""The WSGI adapter: intercept ``start_response``, decide with ``plan``, pick a body source."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

from .bodies import ClosingBody, RangeSlicer, read_file_ranges, slice_chunks
from .files import BoundedFile, FileWrapper, FoundFile, find_file, remaining_size
from .plan import (
    Headers,
    Kind,
    Limits,
    Plan,
    ResponseFacts,
    plan,
    read_headers,
    unsatisfiable_body,
)

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["Predicate", "RangeMiddleware"]

logger = logging.getLogger("rangewsgi")

WriteFn = Callable[[bytes], object]
Predicate = Callable[["WSGIEnvironment", Headers, int], bool]
"""``predicate(environ, headers, length) -> bool``: False leaves a 200 untouched."""

_MISSING = object()


class RangeMiddleware:
    """Answer byte-range requests (RFC 9110 section 14) for any WSGI application.

    Every ``GET`` whose inner response is a ``200`` with a known length (a ``Content-Length``
    or a seekable file body) gets ``206``, ``multipart/byteranges`` or ``416`` as RFC 9110
    says; every such ``200`` (and its ``HEAD``) carries ``Accept-Ranges: bytes``.

    Options:
        max_ranges: more range-specs than this and the Range header is ignored (200).
        max_multipart_excess: a multipart answer more than this many bytes larger than the
            whole representation is not sent; the Range header is ignored (200) instead.
        predicate: ``predicate(environ, headers, length)``; when it returns False the 200
            passes through untouched (no ranges, no Accept-Ranges).
        use_file_wrapper: hand single ranges of file bodies back to the server's
            ``wsgi.file_wrapper`` (zero-copy) where the server honours file offsets.
        file_wrapper_min_size: single ranges shorter than this are read by the middleware
            instead: for a few KiB one read costs less than setting up sendfile.
        block_size: read size for file bodies the middleware reads itself.
    """

    def __init__(self, app: WSGIApplication, *, max_ranges: int = 100,
                 max_multipart_excess: int = 4096, predicate: Predicate | None = None,
                 use_file_wrapper: bool = True, file_wrapper_min_size: int = 32 * 1024,
                 block_size: int = 64 * 1024) -> None:
        if max_ranges < 1:
            raise ValueError("max_ranges must be at least 1")
        if max_multipart_excess < 0:
            raise ValueError("max_multipart_excess must not be negative")
        if block_size < 1:
            raise ValueError("block_size must be positive")
        if file_wrapper_min_size < 0:
            raise ValueError("file_wrapper_min_size must not be negative")
        self.app = app
        self.limits = Limits(max_ranges, max_multipart_excess)
        self.predicate = predicate
        self.use_file_wrapper = use_file_wrapper
        self.file_wrapper_min_size = file_wrapper_min_size
        self.block_size = block_size

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "GET":
            range_value = environ.get("HTTP_RANGE")
        elif method == "HEAD":
            range_value = None  # RFC 9110 14.2: Range is defined for GET only
        else:
            return self.app(environ, start_response)
        exchange = _Exchange(self, environ, start_response, range_value)
        if range_value is None:
            return exchange.run()
        # Offer our own wsgi.file_wrapper so the file behind the body is known; the server's
        # class goes back before returning (gunicorn checks isinstance against it).
        server_wrapper = environ.get("wsgi.file_wrapper", _MISSING)
        environ["wsgi.file_wrapper"] = FileWrapper
        try:
            return exchange.run()
        finally:
            if server_wrapper is _MISSING:
                environ.pop("wsgi.file_wrapper", None)
            else:
                environ["wsgi.file_wrapper"] = server_wrapper


class _Exchange:
    """One request/response through the middleware."""

    __slots__ = ("called", "environ", "found", "headers", "mw", "plan", "range_value",
                 "server_start", "server_wrapper", "slicer", "status", "write_fn")

    def __init__(self, mw: RangeMiddleware, environ: WSGIEnvironment,
                 start_response: StartResponse, range_value: str | None) -> None:
        self.mw = mw
        self.environ = environ
        self.server_start = start_response
        self.range_value = range_value
        self.server_wrapper: Any = environ.get("wsgi.file_wrapper")
        self.called = False
        self.status = ""
        self.headers: Headers = []
        self.plan: Plan | None = None
        self.found: FoundFile | None = None
        self.slicer: RangeSlicer | None = None
        self.write_fn: WriteFn | None = None

    # -- the start_response and write() the inner app sees (PEP 3333) --

    def start_response(self, status: str, headers: Headers,
                       exc_info: OptExcInfo | None = None, /) -> WriteFn:
        failed = exc_info is not None and exc_info[0] is not None
        if failed and self.plan is not None:
            # Headers were committed: the server raises if they were sent, else replaces them.
            # The replacement (an error page) is not ranged.
            try:
                self.plan = Plan(Kind.PASS, status, headers, reason="replaced by exc_info")
                if self.slicer is not None:
                    self.slicer.bypass = True
                self.write_fn = self.server_start(status, headers, exc_info)
            finally:
                exc_info = None
            return self.write
        self.called = True
        self.status = status
        self.headers = headers
        if failed:
            self._commit(Plan(Kind.PASS, status, headers, reason="error response"))
        # Without a Range header the answer is known from the headers alone whenever a
        # Content-Length is present: commit at once and leave the body untouched.
        elif self.range_value is None:
            facts = read_headers(status, headers)
            if facts is None or facts.length is not None:
                self._commit(self._decide(None, facts))
        return self.write

    def write(self, data: bytes) -> None:
        if self.plan is None:
            self._commit(self._decide(None, read_headers(self.status, self.headers)))
        assert self.plan is not None and self.write_fn is not None
        if self.plan.kind in (Kind.PARTIAL, Kind.MULTIPART):
            if self.slicer is None:
                self.slicer = self._stream_slicer(self.plan)
            for piece in self.slicer.push(data):
                self.write_fn(piece)
        elif self.plan.kind is not Kind.UNSATISFIABLE:
            self.write_fn(data)

    # -- deciding --

    def _decide(self, body: object, facts: ResponseFacts | None) -> Plan:
        """``facts`` is ``read_headers()`` of the stored status and headers."""
        if facts is None:
            return Plan(Kind.PASS, self.status, self.headers, reason="not a rangeable 200")
        length = facts.length
        if body is not None and (length is None or self.range_value is not None):
            self.found = find_file(body, self.server_wrapper, self.mw.block_size)
            if self.found is not None:
                available = remaining_size(self.found)
                if length is None:
                    length = available
                elif available is not None and available < length:
                    self.found = None
                    return Plan(Kind.PASS, self.status, self.headers,
                                reason="file shorter than Content-Length")
        if length is None:
            return Plan(Kind.PASS, self.status, self.headers, reason="length unknown")
        predicate = self.mw.predicate
        if predicate is not None and not predicate(self.environ, self.headers, length):
            return Plan(Kind.PASS, self.status, self.headers, reason="predicate declined")
        return plan(self.range_value, self.environ.get("HTTP_IF_RANGE"), self.status,
                    self.headers, facts, length, self.mw.limits)

    def _commit(self, decided: Plan) -> None:
        self.plan = decided
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s Range=%r: %s (%s)", self.environ.get("REQUEST_METHOD"),
                         self.environ.get("PATH_INFO"), self.range_value, decided.kind.value,
                         decided.reason)
        self.write_fn = self.server_start(decided.status, decided.headers)

    # -- the response body --

    def run(self) -> Iterable[bytes]:
        result = self.mw.app(self.environ, self.start_response)
        try:
            chunks: Iterator[bytes] | None = None
            if not self.called:
                # A generator app calls start_response only when first iterated.
                chunks = self._prime(result)
            if self.plan is None:
                self._commit(self._decide(result if chunks is None else None,
                                          read_headers(self.status, self.headers)))
            return self._body(result, chunks)
        except BaseException:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise

    def _prime(self, result: Iterable[bytes]) -> Iterator[bytes]:
        iterator = iter(result)
        first = next(iterator, None)
        if not self.called:
            raise RuntimeError("the application returned a body without calling start_response")
        return iterator if first is None else chain((first,), iterator)

    def _body(self, result: Iterable[bytes], chunks: Iterator[bytes] | None) -> Iterable[bytes]:
        assert self.plan is not None
        kind = self.plan.kind
        close = getattr(result, "close", None)
        if kind is Kind.PASS or kind is Kind.FULL:
            if chunks is not None:
                return ClosingBody(chunks, close)
            if type(result) is FileWrapper and self.server_wrapper is not None:
                # Passing through keeps the server's zero-copy path.
                return self.server_wrapper(result.filelike, result.blksize)  # type: ignore[no-any-return]
            return result
        if kind is Kind.UNSATISFIABLE:
            if close is not None:
                close()
            return unsatisfiable_body()
        found = self.found
        if found is not None and self.slicer is None:
            return self._file_body(found)
        slicer = self.slicer or self._stream_slicer(self.plan)
        self.slicer = slicer
        source = chunks if chunks is not None else iter(result)
        return ClosingBody(slice_chunks(source, slicer), close)

    def _file_body(self, found: FoundFile) -> Iterable[bytes]:
        assert self.plan is not None
        ranges = self.plan.ranges
        wrapper = self.server_wrapper
        only = ranges[0]
        if (self.plan.kind is Kind.PARTIAL and wrapper is not None and self.mw.use_file_wrapper
                and only.stop - only.start >= self.mw.file_wrapper_min_size
                and "uwsgi.version" not in self.environ):
            # A bounded file keeps fileno(): gunicorn sends exactly the range with sendfile
            # from the OS offset. uWSGI ignores offsets (it sends from byte 0), so there the
            # range is read here instead.
            bounded = BoundedFile(found.file, found.base + only.start, found.base + only.stop,
                                  found.close)
            return wrapper(bounded, found.blksize)  # type: ignore[no-any-return]
        return ClosingBody(read_file_ranges(found.file, found.base, ranges, self.plan.framing,
                                            found.blksize), found.close)

    @staticmethod
    def _stream_slicer(decided: Plan) -> RangeSlicer:
        """A slicer over ascending ranges: a stream cannot go back."""
        if decided.framing is None:
            return RangeSlicer(decided.ranges, None)
        framing = decided.framing.ascending()
        return RangeSlicer(framing.ranges, framing)
