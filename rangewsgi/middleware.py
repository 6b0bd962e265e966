"""The WSGI adapter: intercept ``start_response``, decide with ``plan``, pick a body source."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

from .bodies import (
    ClosingBody,
    RangeSlicer,
    exactly,
    read_file_ranges,
    read_source_ranges,
    slice_chunks,
    stream_slicer,
)
from .decision import LengthWarnings, Options, clip, decide_response, needs_body
from .files import BoundedFile, FileWrapper, FoundFile, find_file, on_disk
from .plan import (
    LENGTH_UNKNOWN,
    WRITTEN_HERE,
    Headers,
    Kind,
    Limits,
    Plan,
    Request,
    fixed_body,
    read_headers,
)
from .ranges import ByteRange
from .servers import ServerRow, identify
from .sources import RangedSource, is_ranged_source

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["Predicate", "RangeMiddleware"]

logger = logging.getLogger("rangewsgi")

WriteFn = Callable[[bytes], object]
Predicate = Callable[["WSGIEnvironment", Headers, int], bool]
"""``predicate(environ, headers, length) -> bool``: False leaves a 200 untouched."""

_MISSING = object()
# How a WSGI app gives the middleware a length (see ``LengthWarnings``).
_LENGTH_FIX = ("give the response a Content-Length, or return the file object itself (or "
               "environ['wsgi.file_wrapper'](file)) as the WSGI body (Flask and Werkzeug: "
               "send_file(path, conditional=False), not Response(open(path, 'rb')))")


class RangeMiddleware:
    """Answer byte-range and conditional requests (RFC 9110 sections 13 and 14) for any
    WSGI application.

    Every ``GET`` whose inner response is a ``200`` with a known length (a ``Content-Length``
    or a file body whose size can be measured) gets ``206``, ``multipart/byteranges`` or
    ``416`` as RFC 9110 says, after the preconditions of 13.2.2 (``412``, ``304``); every
    such ``200`` (and its ``HEAD``) carries ``Accept-Ranges: bytes``. A ``200`` of audio,
    video, ``application/octet-stream``, PDF or an archive whose length is unknown passes
    through unranged, with one ``WARNING`` per route on the ``rangewsgi`` logger. A ``200``
    with a ``Content-Encoding`` other than ``identity`` is ranged only when its bytes are the
    same on every request (a strong ``ETag``, or a plain file read from disk); content
    compressed as it is answered passes through. A ``HEAD`` the middleware does not answer
    itself passes through as the app gave it, body included: the server drops the body.

    Options:
        max_ranges: more range-specs than this and the Range header is ignored (200).
        max_multipart_excess: a multipart answer more than this many bytes larger than the
            whole representation is not sent; the Range header is ignored (200) instead.
        predicate: ``predicate(environ, headers, length)``; when it returns False the 200
            passes through untouched (no ranges, no Accept-Ranges, no 304/412).
        use_file_wrapper: hand windows of plain files on disk back to the server's
            ``wsgi.file_wrapper`` (zero-copy) where that server is proven to send exactly
            them (``servers.py``); every other body is read by the middleware.
        file_wrapper_min_size: windows shorter than this are read by the middleware
            instead: for a few KiB one read costs less than setting up sendfile.
        block_size: read size for file bodies the middleware reads itself, and for the
            ``wsgi.file_wrapper`` it offers when the app names no block size.
        conditional: evaluate If-Match, If-Unmodified-Since, If-None-Match and
            If-Modified-Since (RFC 9110 13.2.2) for GET and HEAD: ``412`` and ``304``.
        file_validators: give plain file bodies without ``ETag`` and ``Last-Modified`` a
            strong ``ETag`` (size and modification time) and a ``Last-Modified``.
    """

    def __init__(self, app: WSGIApplication, *, max_ranges: int = 100,
                 max_multipart_excess: int = 4096, predicate: Predicate | None = None,
                 use_file_wrapper: bool = True, file_wrapper_min_size: int = 32 * 1024,
                 block_size: int = 64 * 1024, conditional: bool = True,
                 file_validators: bool = True) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI application (a callable), not {app!r}")
        self.app = app
        self.options = Options(max_ranges, max_multipart_excess, predicate, use_file_wrapper,
                               file_wrapper_min_size, block_size, conditional,
                               file_validators)
        self.file_wrapper = FileWrapper.with_block_size(block_size)
        self.length_warnings = LengthWarnings(_LENGTH_FIX)

    @property
    def limits(self) -> Limits:
        return self.options.limits

    @property
    def predicate(self) -> Predicate | None:
        return self.options.predicate

    @property
    def use_file_wrapper(self) -> bool:
        return self.options.use_file_wrapper

    @property
    def block_size(self) -> int:
        return self.options.block_size

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            # 14.2: Range is defined for GET only; a middleware cannot evaluate preconditions
            # before an unsafe method has run (13.2.1), so every other method is untouched.
            return self.app(environ, start_response)
        get = environ.get
        request = Request(method, get("HTTP_RANGE") if method == "GET" else None,
                          get("HTTP_IF_RANGE"), get("HTTP_IF_MATCH"),
                          get("HTTP_IF_NONE_MATCH"), get("HTTP_IF_MODIFIED_SINCE"),
                          get("HTTP_IF_UNMODIFIED_SINCE"))
        exchange = _Exchange(self, environ, start_response, request)
        # Offer our own wsgi.file_wrapper so the file behind the body is known; the server's
        # class goes back before returning (gunicorn checks isinstance against it).
        server_wrapper = environ.get("wsgi.file_wrapper", _MISSING)
        environ["wsgi.file_wrapper"] = self.file_wrapper
        try:
            return exchange.run()
        finally:
            if server_wrapper is _MISSING:
                environ.pop("wsgi.file_wrapper", None)
            else:
                environ["wsgi.file_wrapper"] = server_wrapper


class _Exchange:
    """One request/response through the middleware."""

    __slots__ = ("called", "closed", "environ", "eof", "found", "headers", "mw", "on_disk",
                 "plan", "request", "result", "server_start", "server_wrapper", "slicer",
                 "source", "status", "write_fn")

    def __init__(self, mw: RangeMiddleware, environ: WSGIEnvironment,
                 start_response: StartResponse, request: Request) -> None:
        self.mw = mw
        self.environ = environ
        self.server_start = start_response
        self.request = request
        self.server_wrapper: Any = environ.get("wsgi.file_wrapper")
        self.called = False
        self.closed = False
        self.status = ""
        self.headers: Headers = []
        self.plan: Plan | None = None
        self.found: FoundFile | None = None
        self.eof: int | None = None  # the found file's measured end, an absolute position
        self.on_disk = False  # the found file is a plain file on disk (Decision.on_disk)
        self.source: RangedSource | None = None
        self.slicer: RangeSlicer | None = None
        self.write_fn: WriteFn | None = None
        self.result: Any = None

    # -- the start_response and write() the inner app sees (PEP 3333) --

    def start_response(self, status: str, headers: Headers,
                       exc_info: OptExcInfo | None = None, /) -> WriteFn:
        failed = exc_info is not None and exc_info[0] is not None
        if not failed and self.called:
            # PEP 3333: "it is a fatal error to call start_response without the exc_info
            # argument if start_response has already been called".
            raise RuntimeError("start_response called a second time without exc_info")
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
        else:
            facts = read_headers(status, headers)
            if not needs_body(self.request, status, headers, self.mw.options, facts):
                # The answer is known from the headers alone: commit at once, body untouched.
                decision = decide_response(self.request, status, headers, None,
                                           self.mw.options, self.environ, facts=facts)
                self._commit(decision.plan)
        return self.write

    def write(self, data: bytes) -> None:
        if self.plan is None:
            self._commit(self._decide(None))
        assert self.plan is not None and self.write_fn is not None
        kind = self.plan.kind
        if kind in (Kind.PARTIAL, Kind.MULTIPART):
            if self.slicer is None:
                self.slicer = stream_slicer(self.plan)
            for piece in self.slicer.push(data):
                self.write_fn(piece)
        elif kind is Kind.PASS or (kind is Kind.FULL and self.request.method != "HEAD"):
            # A pass-through HEAD is the app's own answer: the server drops the body.
            self.write_fn(data)

    # -- deciding --

    def _decide(self, body: object) -> Plan:
        """The plan for the stored status and headers, with ``body`` when it is known."""
        found, source = None, None
        if is_ranged_source(body):
            source = body
        elif body is not None:
            found = find_file(body, self.server_wrapper, self.mw.options.block_size)
        decision = decide_response(self.request, self.status, self.headers, found,
                                   self.mw.options, self.environ, source)
        self.found, self.eof, self.source = decision.found, decision.eof, decision.source
        self.on_disk = decision.on_disk
        return decision.plan

    def _commit(self, decided: Plan) -> None:
        self.plan = decided
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s Range=%r: %s (%s)", self.request.method,
                         clip(self.environ.get("PATH_INFO")), clip(self.request.range),
                         decided.kind.value, decided.reason)
        if decided.reason == LENGTH_UNKNOWN:
            route = (self.environ.get("SCRIPT_NAME", ""), self.environ.get("PATH_INFO", ""))
            self.mw.length_warnings.check(decided, route)
        self.write_fn = self.server_start(decided.status, decided.headers)

    # -- the response body --

    def run(self) -> Iterable[bytes]:
        result = self.result = self.mw.app(self.environ, self.start_response)
        try:
            chunks: Iterator[bytes] | None = None
            if not self.called:
                # A generator app calls start_response only when first iterated.
                chunks = self._prime(result)
            if self.plan is None:
                self._commit(self._decide(result if chunks is None else None))
            return self._body(result, chunks)
        except BaseException:
            self.close_result()
            raise

    def close_result(self) -> None:
        """Close the inner app's iterable, exactly once on every path (PEP 3333)."""
        if self.closed:
            return
        self.closed = True
        close = getattr(self.result, "close", None)
        if close is not None:
            close()

    def _prime(self, result: Iterable[bytes]) -> Iterator[bytes]:
        iterator = iter(result)
        first = next(iterator, None)
        if not self.called:
            raise RuntimeError("the application returned a body without calling start_response")
        # Never hand back ``iterator`` itself: for a generator it is ``result``, whose close()
        # would then run twice.
        return iter(()) if first is None else chain((first,), iterator)

    def _body(self, result: Iterable[bytes], chunks: Iterator[bytes] | None) -> Iterable[bytes]:
        assert self.plan is not None
        kind = self.plan.kind
        head = self.request.method == "HEAD"
        if kind in WRITTEN_HERE or (head and kind is not Kind.PASS):
            # The middleware's own answer: a 416, 412 or 304 is written here, and a HEAD it
            # answers (a 304, 412, or the fields of a full 200) has no content (RFC 9110
            # 9.3.2; some servers send a HEAD body anyway). The app's body is closed unread,
            # now; an error its close() raises reaches the server's close(), where it would
            # without the middleware, and the answer still goes out. A HEAD passed through
            # is not one: the app's body goes to the server, which frames the answer as for
            # the GET and drops the body (9.3.2: the same fields as for GET; 8.6: a
            # Content-Length, if sent, that of the GET).
            written = () if head else fixed_body(kind)
            return ClosingBody.closed_early(iter(written), self.close_result)
        source = self.source
        if source is not None and kind is not Kind.PASS:
            # One read_range per part, in the order sent; the full 200 reads it once.
            if kind is Kind.FULL:
                chunks = exactly(source, self.plan.length)
            else:
                chunks = read_source_ranges(source, self.plan.ranges, self.plan.framing)
            return ClosingBody(chunks, self.close_result)
        found = self.found
        if kind is Kind.PASS or kind is Kind.FULL:
            if chunks is not None:
                return ClosingBody(chunks, self.close_result)
            if kind is Kind.FULL and found is not None:
                length = self.plan.length
                return self._window(found, found.base, found.base + length)
            if (isinstance(result, FileWrapper) and self.server_wrapper is not None
                    and on_disk(result.filelike)):
                # The app's own answer, a plain file: to the server's wrapper (zero-copy), as
                # without the middleware. Any other file is read by our wrapper: a server's
                # sends from the descriptor, which for a compressed stream holds other bytes
                # and for a procfs file has a size of 0.
                return self.server_wrapper(result.filelike, result.blksize)  # type: ignore[no-any-return]
            return result
        if found is not None and self.slicer is None:
            if kind is Kind.PARTIAL:
                only = self.plan.ranges[0]
                return self._window(found, found.base + only.start, found.base + only.stop)
            return ClosingBody(read_file_ranges(found.file, found.base, self.plan.ranges,
                                                self.plan.framing, found.blksize),
                               self.close_result)
        slicer = self.slicer or stream_slicer(self.plan)
        self.slicer = slicer
        stream = chunks if chunks is not None else iter(result)
        return ClosingBody(slice_chunks(stream, slicer), self.close_result)

    def _window(self, found: FoundFile, start: int, stop: int) -> Iterable[bytes]:
        """Bytes ``[start, stop)`` of the found file, never one more: through the server's
        wrapper where that server is proven to send exactly this window of a plain file on
        disk, else read here."""
        if self._server_sends_window(start, stop):
            bounded = BoundedFile(found.file, start, stop, self.close_result)
            return self.server_wrapper(bounded, found.blksize)  # type: ignore[no-any-return]
        window = (ByteRange(start - found.base, stop - found.base, 0),)
        return ClosingBody(read_file_ranges(found.file, found.base, window, None,
                                            found.blksize), self.close_result)

    def _server_sends_window(self, start: int, stop: int) -> bool:
        options = self.mw.options
        if (self.server_wrapper is None or not options.use_file_wrapper
                or stop - start < options.file_wrapper_min_size):
            return False
        if not self.on_disk:
            # A server's wrapper sends from the descriptor (sendfile): for a compressed stream
            # or an archive member that descriptor holds other bytes than read() yields
            # (gzip.open: the compressed file), and a pipe or procfs file has no window to
            # send. Only a plain regular file is handed over.
            return False
        row: ServerRow = identify(self.environ, self.server_wrapper)
        # A server that sends from byte 0 is right for windows that start there; one that
        # sends on to the end of the file, for windows that end there.
        return ((row.honours_offset or start == 0)
                and (row.stops_at_length or (self.eof is not None and stop == self.eof)))
