"""The WSGI adapter: intercept ``start_response`` and carry out the engine's step in WSGI.

What to answer and which body to send are the engine's (``engine.read_request``,
``engine.plain_answer``, ``engine.respond``); this module only finds the file behind a body
(``wsgi_files``), offers its own ``wsgi.file_wrapper`` and turns each ``engine.Action`` into
a WSGI response iterable (``_Exchange._CARRY_OUT``).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .bodies import (
    ClosingBody,
    RangeSlicer,
    exactly,
    read_file_ranges,
    read_source_ranges,
    slice_chunks,
)
from .decision import LengthWarnings, clip, needs_body
from .engine import (
    NO_ZERO_COPY,
    PLAIN_ACCEPT_RANGES,
    PLAIN_BODY,
    PLAIN_FULL_PATH,
    PLAIN_UNTOUCHED,
    REQUEST_FIELDS,
    Action,
    Plain,
    RequestView,
    Response,
    Route,
    Server,
    Step,
    plain_answer,
    plain_step,
    read_request,
    respond,
    step_for,
)
from .files import BoundedFile, FileWrapper, FoundFile, on_disk
from .options import Options, make_options
from .plan import LENGTH_UNKNOWN, Headers, Kind, Limits, Plan, read_headers
from .servers import identify
from .sources import RangedSource, is_ranged_source
from .wsgi_files import find_file

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["Predicate", "RangeMiddleware"]

logger = logging.getLogger("rangewsgi")

WriteFn = Callable[[bytes], object]
Predicate = Callable[["WSGIEnvironment", Headers, int], bool]
"""``predicate(environ, headers, length) -> bool``: False leaves a 200 untouched."""

_MISSING = object()
_ACCEPT_RANGES = ("Accept-Ranges", "bytes")  # RFC 9110 14.3
# Bodies that are bytes as they come, never a file nor a ranged source.
_PLAIN_BODIES = (list, tuple)
# How a WSGI app gives the middleware a length (see ``LengthWarnings``).
_LENGTH_FIX = ("give the response a Content-Length, or return the file object itself (or "
               "environ['wsgi.file_wrapper'](file)) as the WSGI body (Flask and Werkzeug: "
               "send_file(path, conditional=False), not Response(open(path, 'rb')))")
# The environ key of each request field the engine reads (PEP 3333: CGI-style HTTP_ names).
_ENVIRON_KEYS = {name: "HTTP_" + name.upper().replace("-", "_") for name in REQUEST_FIELDS}
_ANY_FIELD = frozenset(_ENVIRON_KEYS.values())
# The engine's view of a GET and of a HEAD that carry none of those fields: the common case,
# read once here rather than per request.
_PLAIN_VIEWS = {method: read_request(method, {}) for method in ("GET", "HEAD")}


# Every option's default, as ``Options`` writes it: the signature below shows them.
_DEFAULT = Options()


def _request_view(environ: WSGIEnvironment, method: str) -> RequestView:
    """The engine's view of the request in ``environ``."""
    fields = {name: environ[key] for name, key in _ENVIRON_KEYS.items() if key in environ}
    return read_request(method, fields)


def _is_async(app: object) -> bool:
    """Whether ``app``, or its ``__call__``, is a coroutine function (through
    ``functools.partial`` too): an ASGI app, which a WSGI server cannot call."""
    while isinstance(app, functools.partial):
        app = app.func
    if inspect.iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)  # noqa: B004 - the method itself is wanted
    return not inspect.isfunction(app) and inspect.iscoroutinefunction(call)


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
    itself passes through as the app gave it, body included: the server drops the body. A
    ``HEAD``'s ``Range`` and ``If-Range`` are hidden from the app (RFC 9110 14.2: only GET
    is ranged). Given an ASGI app, it raises ``TypeError`` when made; a misspelt option
    names its close match.

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
        file_validators: for plain file bodies without ``ETag`` and ``Last-Modified``:
            ``True``, a strong ``ETag`` (size and modification time) and a
            ``Last-Modified``; ``"content"``, a strong ``ETag`` from the file's SHA-256 and
            a ``Repr-Digest`` (RFC 9530) as well, the same on every replica; ``False``, none.
    """

    def __init__(self, app: WSGIApplication, *, max_ranges: int = _DEFAULT.max_ranges,
                 max_multipart_excess: int = _DEFAULT.max_multipart_excess,
                 predicate: Predicate | None = None,
                 use_file_wrapper: bool = _DEFAULT.use_file_wrapper,
                 file_wrapper_min_size: int = _DEFAULT.file_wrapper_min_size,
                 block_size: int = _DEFAULT.block_size, conditional: bool = _DEFAULT.conditional,
                 file_validators: bool | Literal["content"] = _DEFAULT.file_validators,
                 **unknown: object) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI application (a callable), not {app!r}")
        if _is_async(app):
            raise TypeError(f"{app!r} is an ASGI application (its __call__ is a coroutine "
                            "function): wrap it with `from rangewsgi.asgi import "
                            "RangeMiddleware`")
        self.app = app
        # An unknown name is refused with its close match ("did you mean max_ranges?").
        self.options: Options = make_options("wsgi", {
            "max_ranges": max_ranges, "max_multipart_excess": max_multipart_excess,
            "predicate": predicate, "use_file_wrapper": use_file_wrapper,
            "file_wrapper_min_size": file_wrapper_min_size, "block_size": block_size,
            "conditional": conditional, "file_validators": file_validators, **unknown})
        self.file_wrapper = FileWrapper.with_block_size(self.options.block_size)
        # The lean pass-through (``_lean``) decides without asking a predicate.
        self.lean = self.options.predicate is None
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
        # The common case, a request without any field the engine reads: six lookups (a view
        # of the keys checks the six names against the environ, not the environ's keys).
        if environ.keys().isdisjoint(_ANY_FIELD):
            if self.lean and not logger.isEnabledFor(logging.DEBUG):
                return _lean(self, environ, start_response, method)
            view = _PLAIN_VIEWS[method]
        else:
            view = _request_view(environ, method)
        if view.hide:
            # 14.2: a HEAD's Range (and If-Range) is ignored: the app does not see it.
            hidden = {_ENVIRON_KEYS[name] for name in view.hide}
            environ = {key: value for key, value in environ.items() if key not in hidden}
        exchange = _Exchange(self, environ, start_response, view)
        # Offer our own wsgi.file_wrapper so the file behind the body is known; the server's
        # class goes back before returning (gunicorn checks isinstance against it).
        server_wrapper = environ.get("wsgi.file_wrapper", _MISSING)
        environ["wsgi.file_wrapper"] = self.file_wrapper
        try:
            return exchange.carry_out(self.app(environ, exchange.start_response))
        finally:
            _restore_wrapper(environ, server_wrapper)


def _restore_wrapper(environ: WSGIEnvironment, server_wrapper: object) -> None:
    """Give the environ back the server's ``wsgi.file_wrapper`` (or none, as it had)."""
    if server_wrapper is _MISSING:
        environ.pop("wsgi.file_wrapper", None)
    else:
        environ["wsgi.file_wrapper"] = server_wrapper


def _lean(mw: RangeMiddleware, environ: WSGIEnvironment, start_response: StartResponse,
          method: str) -> Iterable[bytes]:
    """A ``GET`` or ``HEAD`` without Range or precondition fields, under options without a
    predicate: the pass-through every request of every app takes, kept to a few lookups.

    ``engine.plain_answer`` decides from the response's fields alone: a rangeable ``200``
    with a length and validators only gains ``Accept-Ranges: bytes`` (RFC 9110 14.3), and
    anything else that is not a rangeable ``200`` goes untouched; both are sent at once, and
    the app's body goes to the server as it is. A rangeable ``200`` that lacks validators
    waits for its body: a list of bytes is no file to give validators, so it gains
    ``Accept-Ranges`` too. Every other response (a file body, no length, a coding, an
    ``exc_info``, a ``write()``, a generator that starts its response late) is handed to a
    full ``_Exchange`` with everything seen so far.
    """
    full: _Exchange | None = None
    sent = False  # the fields went to the server: the rest is the app's and the server's
    held: tuple[str, Headers] | None = None  # fields waiting for the body
    accepted = False  # a rangeable 200 answered here: Accept-Ranges appended
    head = method == "HEAD"

    def start(status: str, headers: Headers, exc_info: OptExcInfo | None = None,
              /) -> WriteFn:
        nonlocal sent, accepted, held, full
        if sent:
            # A second call is the server's to judge (PEP 3333: only with exc_info).
            return start_response(status, headers, exc_info)
        if full is None:
            if held is None and exc_info is None:
                answer = plain_answer(status, headers, file_validators)
                if answer is PLAIN_ACCEPT_RANGES:
                    sent = accepted = True
                    written = start_response(status, [*headers, _ACCEPT_RANGES])
                    # RFC 9110 9.3.2: a HEAD the middleware answers carries no content.
                    return _discard if head else written
                if answer is PLAIN_UNTOUCHED:
                    sent = True
                    return start_response(status, headers)
                if answer is PLAIN_BODY:
                    held = (status, headers)

                    def write(data: bytes) -> None:
                        # A write() before the body is known: the full exchange's.
                        nonlocal full
                        if full is None:
                            full = _take_over(mw, environ, start_response, method,
                                              server_wrapper, held)
                        full.write(data)

                    return write  # decided with the body
            full = _take_over(mw, environ, start_response, method, server_wrapper, held)
        return full.start_response(status, headers, exc_info)

    file_validators = mw.options.file_validators
    server_wrapper = environ.get("wsgi.file_wrapper", _MISSING)
    environ["wsgi.file_wrapper"] = mw.file_wrapper
    try:
        result = mw.app(environ, start)
        if not sent:
            if held is not None and full is None and type(result) in _PLAIN_BODIES:
                # Bytes, not a file: the fields alone decide (no validators to give).
                status, headers = held
                answer = plain_answer(status, headers, False)
                if answer is PLAIN_ACCEPT_RANGES:
                    start_response(status, [*headers, _ACCEPT_RANGES])
                    return _emptied(result) if head else result
                if answer is PLAIN_UNTOUCHED:
                    start_response(status, headers)
                    return result
            # Decided with the body, or the app starts its response when iterated.
            if full is None:
                full = _take_over(mw, environ, start_response, method, server_wrapper, held)
            return full.carry_out(result)
    finally:
        _restore_wrapper(environ, server_wrapper)
    if head and accepted:
        return _emptied(result)
    if isinstance(result, FileWrapper):
        return _to_server_wrapper(result, server_wrapper)
    return result


def _discard(data: bytes) -> None:
    """The ``write()`` of a ``HEAD`` the middleware answers: its content goes nowhere."""


def _emptied(result: Iterable[bytes]) -> Iterable[bytes]:
    """No content for a ``HEAD`` the middleware answers (RFC 9110 9.3.2): the app's body is
    closed unread, now; an error its ``close()`` raises reaches the server's ``close()``."""
    close = getattr(result, "close", None)
    return ClosingBody.closed_early(iter(()), close if close is not None else _no_close)


def _no_close() -> None:
    """The close of a body that has none."""


def _take_over(mw: RangeMiddleware, environ: WSGIEnvironment, start_response: StartResponse,
               method: str, server_wrapper: object,
               held: tuple[str, Headers] | None) -> _Exchange:
    """The full exchange for a response the lean path does not decide, with the fields the
    app has given (``held``) if any."""
    exchange = _Exchange(mw, environ, start_response, _PLAIN_VIEWS[method])
    # Made while the environ offers ours: the server's wrapper is the one set aside.
    exchange.server_wrapper = None if server_wrapper is _MISSING else server_wrapper
    if held is not None:
        exchange.called = True
        exchange.status, exchange.headers = held
    return exchange


def _to_server_wrapper(result: FileWrapper, server_wrapper: object) -> Iterable[bytes]:
    """The app's own file answer, a plain file on disk: to the server's wrapper (zero-copy),
    as without the middleware. Any other file is read by our wrapper: a server's sends from
    the descriptor, which for a compressed stream holds other bytes and for a procfs file has
    a size of 0."""
    if server_wrapper is not _MISSING and server_wrapper is not None and on_disk(result.filelike):
        return server_wrapper(result.filelike, result.blksize)  # type: ignore[operator, no-any-return]
    return result


class _Exchange:
    """One request/response through the middleware: the engine's ``Step`` carried out."""

    # State that most responses never change starts as a class attribute: making one
    # exchange per request then costs only what each request sets.
    called = False
    closed = False
    status = ""
    headers: Headers = []  # noqa: RUF012 - replaced, never mutated
    step: Step | None = None
    found: FoundFile | None = None
    source: RangedSource | None = None
    slicer: RangeSlicer | None = None
    write_fn: WriteFn | None = None
    result: Any = None

    def __init__(self, mw: RangeMiddleware, environ: WSGIEnvironment,
                 start_response: StartResponse, view: RequestView) -> None:
        self.mw = mw
        self.environ = environ
        self.server_start = start_response
        assert view.request is not None
        self.request = view.request
        # The lean path (``engine.plain_answer``): a plain request, and no predicate to ask.
        self.lean = view.route is Route.PLAIN and mw.options.predicate is None
        self.server_wrapper: Any = environ.get("wsgi.file_wrapper")

    # -- the start_response and write() the inner app sees (PEP 3333) --

    def start_response(self, status: str, headers: Headers,
                       exc_info: OptExcInfo | None = None, /) -> WriteFn:
        failed = exc_info is not None and exc_info[0] is not None
        if not failed and self.called:
            # PEP 3333: "it is a fatal error to call start_response without the exc_info
            # argument if start_response has already been called".
            raise RuntimeError("start_response called a second time without exc_info")
        if failed and self.step is not None:
            # Headers were committed: the server raises if they were sent, else replaces them.
            # The replacement (an error page) is not ranged.
            try:
                replaced = Plan(Kind.PASS, status, headers, reason="replaced by exc_info")
                self.step = step_for(replaced, self.request.method == "HEAD")
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
            error = Plan(Kind.PASS, status, headers, reason="error response")
            self._commit(step_for(error, self.request.method == "HEAD"))
            return self.write
        options = self.mw.options
        if self.lean:
            answer = plain_answer(status, headers, options.file_validators)
            if answer is PLAIN_BODY:
                return self.write  # decided with the body (``run`` or the first write)
            if answer is not PLAIN_FULL_PATH:
                # The lean path: no Range, no precondition, decided by the fields alone.
                self._commit_plain(answer)
                return self.write
        facts = read_headers(status, headers)
        if not needs_body(self.request, status, headers, options, facts):
            # The answer is known from the headers alone: commit at once, body untouched.
            self._commit(respond(self.request, Response(status, headers, facts),
                                 self.mw.options, self.environ)[0])
        return self.write

    def _commit_plain(self, answer: Plain) -> None:
        """Send the app's fields, with ``Accept-Ranges: bytes`` for a rangeable 200."""
        self.step = step = plain_step(self.request.method == "HEAD", answer)
        if logger.isEnabledFor(logging.DEBUG):
            self._log(step.plan)
        headers = self.headers
        if answer is PLAIN_ACCEPT_RANGES:
            headers = [*headers, _ACCEPT_RANGES]
        self.write_fn = self.server_start(self.status, headers)

    def write(self, data: bytes) -> None:
        if self.step is None:
            self._decide_with_body(None)
        assert self.step is not None and self.write_fn is not None
        action = self.step.action
        if action is Action.STREAM_SLICE:
            if self.slicer is None:
                self.slicer = RangeSlicer(self.step.ranges, self.step.framing)
            for piece in self.slicer.push(data):
                self.write_fn(piece)
        elif action is Action.FORWARD:
            # A pass-through HEAD is the app's own answer: the server drops the body.
            self.write_fn(data)

    # -- deciding --

    def _decide_with_body(self, body: object) -> None:
        """Commit the step for the stored fields and ``body`` (None: bytes as they come)."""
        if self.lean and (body is None or type(body) in _PLAIN_BODIES):
            # Not a file: validators are no file's to give; the fields alone decide.
            answer = plain_answer(self.status, self.headers, False)
            if answer is PLAIN_ACCEPT_RANGES or answer is PLAIN_UNTOUCHED:
                self._commit_plain(answer)
                return
        self._commit(self._respond(body))

    def _respond(self, body: object) -> Step:
        """The engine's step for the stored status and headers, with ``body`` if known."""
        found, source = None, None
        if is_ranged_source(body):
            source = body
        elif body is not None:
            found = find_file(body, self.server_wrapper, self.mw.options.block_size)
        server = self._server() if found is not None else NO_ZERO_COPY
        response = Response(self.status, self.headers, read_headers(self.status, self.headers))
        step, self.found, self.source = respond(self.request, response, self.mw.options,
                                                self.environ, found, source, server)
        return step

    def _server(self) -> Server:
        """What the server's ``wsgi.file_wrapper`` is proven to send (``servers.py``)."""
        options = self.mw.options
        if self.server_wrapper is None or not options.use_file_wrapper:
            return NO_ZERO_COPY
        return Server(identify(self.environ, self.server_wrapper),
                      options.file_wrapper_min_size)

    def _log(self, decided: Plan) -> None:
        logger.debug("%s %s Range=%r: %s (%s)", self.request.method,
                     clip(self.environ.get("PATH_INFO")), clip(self.request.range),
                     decided.kind.value, decided.reason)

    def _commit(self, step: Step) -> None:
        self.step = step
        decided = step.plan
        if logger.isEnabledFor(logging.DEBUG):
            self._log(decided)
        if decided.reason == LENGTH_UNKNOWN:
            route = (self.environ.get("SCRIPT_NAME", ""), self.environ.get("PATH_INFO", ""))
            self.mw.length_warnings.check(decided, route)
        self.write_fn = self.server_start(decided.status, decided.headers)

    # -- the response body --

    def carry_out(self, result: Iterable[bytes]) -> Iterable[bytes]:
        """The response iterable for the app's ``result`` (its ``start_response`` is ours)."""
        self.result = result
        try:
            chunks: Iterator[bytes] | None = None
            if not self.called:
                # A generator app calls start_response only when first iterated.
                chunks = self._prime(result)
            if self.step is None:
                self._decide_with_body(result if chunks is None else None)
            assert self.step is not None
            return self._CARRY_OUT[self.step.action](self, self.step, result, chunks)
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

    # -- one method per engine action --

    def _fixed(self, step: Step, result: Iterable[bytes],
               chunks: Iterator[bytes] | None) -> Iterable[bytes]:
        # The middleware's own answer. The app's body is closed unread, now; an error its
        # close() raises reaches the server's close(), where it would without the
        # middleware, and the answer still goes out.
        written = (step.fixed,) if step.fixed else ()
        return ClosingBody.closed_early(iter(written), self.close_result)

    def _forward(self, step: Step, result: Iterable[bytes],
                 chunks: Iterator[bytes] | None) -> Iterable[bytes]:
        # The app's body as it comes. A HEAD passed through is the app's answer: the server
        # frames it as for the GET and drops the body (RFC 9110 9.3.2, 8.6).
        if chunks is not None:
            return ClosingBody(chunks, self.close_result)
        if isinstance(result, FileWrapper):
            return _to_server_wrapper(result, self.server_wrapper)
        return result

    def _server_window(self, step: Step, result: Iterable[bytes],
                       chunks: Iterator[bytes] | None) -> Iterable[bytes]:
        found = self.found
        assert found is not None
        bounded = BoundedFile(found.file, step.start, step.stop, self.close_result)
        return self.server_wrapper(bounded, found.blksize)  # type: ignore[no-any-return]

    def _file_ranges(self, step: Step, result: Iterable[bytes],
                     chunks: Iterator[bytes] | None) -> Iterable[bytes]:
        found = self.found
        assert found is not None
        return ClosingBody(read_file_ranges(found.file, step.base, step.ranges, step.framing,
                                            found.blksize), self.close_result)

    def _source_ranges(self, step: Step, result: Iterable[bytes],
                       chunks: Iterator[bytes] | None) -> Iterable[bytes]:
        # One read_range per part, in the order sent; the full 200 iterates it once.
        source = self.source
        assert source is not None
        if step.whole:
            return ClosingBody(exactly(source, step.plan.length), self.close_result)
        return ClosingBody(read_source_ranges(source, step.ranges, step.framing),
                           self.close_result)

    def _stream_slice(self, step: Step, result: Iterable[bytes],
                      chunks: Iterator[bytes] | None) -> Iterable[bytes]:
        slicer = self.slicer or RangeSlicer(step.ranges, step.framing)
        self.slicer = slicer
        stream = chunks if chunks is not None else iter(result)
        return ClosingBody(slice_chunks(stream, slicer), self.close_result)

    _CARRY_OUT: ClassVar[dict[Action, Callable[[_Exchange, Step, Iterable[bytes],
                                                Iterator[bytes] | None], Iterable[bytes]]]] = {
        Action.FIXED: _fixed,
        Action.FORWARD: _forward,
        Action.SERVER_WINDOW: _server_window,
        Action.FILE_RANGES: _file_ranges,
        Action.SOURCE_RANGES: _source_ranges,
        Action.STREAM_SLICE: _stream_slice,
    }
