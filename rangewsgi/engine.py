"""The sans-IO engine: what to do with one exchange, as a value each adapter carries out.

Theory of operation
-------------------
An exchange goes through the middleware in two steps, and the engine owns the rules of both;
it never touches a socket, an environ, a scope or a file.

1. **The request** (``read_request``). From the method and the request fields the engine
   tells the adapter which ``Route`` to take and which fields to hide from the app:

   - ``Route.UNTOUCHED``: not a ``GET`` or ``HEAD``. RFC 9110 14.2 defines Range for GET only,
     and 13.2.1 forbids evaluating preconditions after an unsafe method has run: the app's
     answer goes out as it is.
   - ``Route.PLAIN``: a ``GET`` or ``HEAD`` with no Range and no precondition field. The only
     work left is to mark a rangeable ``200`` with ``Accept-Ranges`` (14.3) and to give a
     plain file validators. Under options without a predicate an adapter takes the lean
     path: ``plain_answer`` reads the response's fields once and says ``ACCEPT_RANGES``,
     ``UNTOUCHED``, ``BODY`` (wait for the body, then ask again or take the full path) or
     ``FULL_PATH``; ``plain_step`` is then the step, with no ``Plan`` made per request.
   - ``Route.DECIDE``: everything else, decided by the full path below.

   A ``HEAD`` hides ``Range`` and ``If-Range`` from the app (14.2: a server "MUST ignore a
   Range header field received with a request method that is unrecognized or for which range
   handling is not defined"; "GET is the only method for which range handling is defined"),
   so an app that ranges by itself cannot answer a HEAD with a 206.

2. **The response** (``respond``). The adapter describes the inner response (status and
   fields), its body (``Body``: bytes as they come, a seekable file, a ranged source) and its
   server (``Server``: which file windows it sends exactly by zero-copy). The engine takes
   the 13.2.2 decision (``decision.decide_response``, which calls ``plan.decide``) and turns
   it into one ``Step``, whose ``Action`` is the only thing the adapter switches on:

   =============== ==========================================================================
   FORWARD         the app's body as it comes; fields perhaps added (a full 200)
   FIXED           the middleware's own short body (416, 412) or none (304, a HEAD the
                   middleware answers); the app's body is closed unread
   SERVER_WINDOW   the window ``[start, stop)`` of a plain file on disk, handed to the
                   server's zero-copy, only where ``servers.sends_window`` proves it exact
   FILE_RANGES     ``ranges`` read from the file by seeking (``framing`` for multipart)
   SOURCE_RANGES   one ``read_range`` per part of a ranged source, or the whole source once
   STREAM_SLICE    ``ranges`` sliced out of the app's byte stream (ascending parts)
   =============== ==========================================================================

A HEAD that the middleware answers is never given content (RFC 9110 9.3.2); a HEAD it does
not answer is the app's own (FORWARD), which the server frames as for the GET.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .decision import NOT_GIVEN, NotGiven, decide_response
from .digests import ContentValidators
from .files import FoundFile
from .multipart import Framing
from .options import Options
from .plan import WRITTEN_HERE, Headers, Kind, Plan, Request, ResponseFacts, fixed_body
from .ranges import ByteRange
from .servers import ServerRow, sends_window
from .sources import RangedSource

__all__ = [
    "HEAD_HIDES",
    "NO_ZERO_COPY",
    "PRECONDITION_FIELDS",
    "RANGE_FIELDS",
    "REQUEST_FIELDS",
    "STREAM",
    "Action",
    "Body",
    "BodyKind",
    "Plain",
    "RequestView",
    "Response",
    "Route",
    "Server",
    "Step",
    "plain_answer",
    "plain_step",
    "read_request",
    "respond",
    "step_for",
]

# Request fields the decision reads, as lower-case field names.
RANGE_FIELDS = ("range", "if-range")
PRECONDITION_FIELDS = ("if-match", "if-none-match", "if-modified-since",
                       "if-unmodified-since")
REQUEST_FIELDS = RANGE_FIELDS + PRECONDITION_FIELDS
# 14.2: range handling is defined for GET only; a HEAD's Range (and the If-Range that only
# qualifies a Range, 13.1.5) is ignored, and hidden from the app.
HEAD_HIDES = frozenset(RANGE_FIELDS)
_NO_FIELDS: frozenset[str] = frozenset()


class Route(enum.Enum):
    """Which path a request takes through an adapter (see the module docstring)."""

    # Members are singletons: hashing by identity runs no Python code per set or dict lookup.
    __hash__ = object.__hash__

    UNTOUCHED = "untouched"
    PLAIN = "plain"
    DECIDE = "decide"


@dataclass(frozen=True, slots=True)
class RequestView:
    """What the engine makes of a request: its route, the fields to hide from the app, and
    the ``Request`` the decision reads (None when the route is ``UNTOUCHED``)."""

    route: Route
    hide: frozenset[str]
    request: Request | None


def read_request(method: str, fields: Mapping[str, str]) -> RequestView:
    """The route for ``method`` and ``fields`` (lower-case names of ``REQUEST_FIELDS``
    present in the request, with their combined values, RFC 9110 5.3)."""
    if method != "GET" and method != "HEAD":
        return RequestView(Route.UNTOUCHED, _NO_FIELDS, None)
    hide = HEAD_HIDES if method == "HEAD" else _NO_FIELDS
    get = fields.get
    request = Request(method, None if hide else get("range"), None if hide else get("if-range"),
                      get("if-match"), get("if-none-match"), get("if-modified-since"),
                      get("if-unmodified-since"))
    plain = request.range is None and request.if_range is None and not request.has_preconditions
    return RequestView(Route.PLAIN if plain else Route.DECIDE,
                       hide if any(name in fields for name in hide) else _NO_FIELDS, request)


class Plain(enum.Enum):
    """What the fields of the response to a ``Route.PLAIN`` request tell (``plain_answer``)."""

    # Members are singletons: hashing by identity runs no Python code per set or dict lookup.
    __hash__ = object.__hash__

    UNTOUCHED = "untouched"  # not a rangeable 200: forwarded as the app gave it
    ACCEPT_RANGES = "accept ranges"  # a rangeable 200: ``Accept-Ranges: bytes`` appended
    BODY = "body"  # the body decides: no length, or a file body may get validators
    FULL_PATH = "full path"  # a coding or the app's Accept-Ranges: the full path reads them


PlainFields = Sequence[tuple[str, str]] | Sequence[tuple[bytes, bytes]]


def plain_answer(status: str, fields: PlainFields, file_validators: object) -> Plain:
    """For a ``Route.PLAIN`` request under options without a predicate: what the response's
    ``fields`` (names as ``str`` or ``bytes``) decide alone.

    The lean form of ``plan.read_headers``, ``decision.needs_body`` and ``plan.decide`` for
    this case, in one pass: a rangeable ``200`` with a length (and validators, when
    ``file_validators`` would give a file some) only gets ``Accept-Ranges: bytes`` (14.3); a
    response that is not one passes untouched; anything less plain (a coding, an
    ``Accept-Ranges`` of the app's) takes the full path, and a response without a length, or
    whose file body may need validators, waits for its body (``BODY``).
    ``tests/test_engine.py`` checks that both paths agree.
    """
    if status[:4] != "200 " and status != "200":
        return PLAIN_UNTOUCHED
    length = validated = False
    roles = _ROLE_OF
    try:
        for name, value in fields:
            role = roles.get(name)
            if role is None:
                role = _learn_role(name)
            if role == _OTHER:
                continue
            if role == _LENGTH:
                # 8.6: Content-Length = 1*DIGIT; two of them, or no valid one: untouched.
                if length or not ((value.isdigit() and value.isascii() and len(value) <= 19)
                                  or _is_length(value)):
                    return PLAIN_UNTOUCHED
                length = True
            elif role == _VALIDATOR:
                validated = True
            elif role == _UNTOUCHED:
                return PLAIN_UNTOUCHED  # framed or ranged by the app: read_headers passes it
            else:
                return PLAIN_FULL_PATH  # a coding (8.4) or the app's Accept-Ranges (14.3)
    except (TypeError, AttributeError):  # a name or value of another type: the full path
        return PLAIN_FULL_PATH
    if not length or (file_validators and not validated):
        return PLAIN_BODY  # ``decision.needs_body`` says so too
    return PLAIN_ACCEPT_RANGES


# The members as module constants: a global lookup costs a fraction of an enum attribute's.
PLAIN_UNTOUCHED = Plain.UNTOUCHED
PLAIN_ACCEPT_RANGES = Plain.ACCEPT_RANGES
PLAIN_BODY = Plain.BODY
PLAIN_FULL_PATH = Plain.FULL_PATH


# What a response field means to ``plain_answer``, by its lower-case name (text or bytes).
_OTHER, _LENGTH, _VALIDATOR, _UNTOUCHED, _FULL_PATH = range(5)
_ROLES = {"content-length": _LENGTH, "etag": _VALIDATOR, "last-modified": _VALIDATOR,
          "transfer-encoding": _UNTOUCHED, "content-range": _UNTOUCHED,
          "content-encoding": _FULL_PATH, "accept-ranges": _FULL_PATH}
_LOWER_ROLES: dict[str | bytes, int] = {}
for _name, _role in _ROLES.items():
    _LOWER_ROLES[_name] = _LOWER_ROLES[_name.encode("latin-1")] = _role
# Field names as apps write them, learnt on first sight (``Content-Length``, ``ETag``): one
# dictionary lookup per field afterwards. Bounded: names past the bound are lowered each time.
_ROLE_OF: dict[str | bytes, int] = dict(_LOWER_ROLES)
_ROLE_NAMES_MAX = 1024


def _learn_role(name: str | bytes) -> int:
    role = _LOWER_ROLES.get(name.lower(), _OTHER)
    if len(_ROLE_OF) < _ROLE_NAMES_MAX:
        _ROLE_OF[name] = role
    return role


def _is_length(value: str | bytes) -> bool:
    """RFC 9110 8.6: Content-Length = 1*DIGIT (as ``plan.read_headers`` reads it)."""
    if not value.isdigit():
        value = value.strip(" \t") if isinstance(value, str) else value.strip(b" \t")
    return value.isascii() and value.isdigit() and len(value) <= 19


class Action(enum.Enum):
    """What the adapter does with the response body (see the module docstring)."""

    # Members are singletons: hashing by identity runs no Python code per set or dict lookup.
    __hash__ = object.__hash__

    FORWARD = "forward"
    FIXED = "fixed"
    SERVER_WINDOW = "server window"
    FILE_RANGES = "file ranges"
    SOURCE_RANGES = "source ranges"
    STREAM_SLICE = "stream slice"


class BodyKind(enum.Enum):
    """What the inner response's body is, as far as the adapter could tell."""

    STREAM = "stream"  # bytes as they come (a list, a generator, body messages)
    FILE = "file"  # a seekable file found behind the body
    SOURCE = "source"  # a ranged source (``sources.RangedSource``)


@dataclass(frozen=True, slots=True)
class Body:
    """The body's kind; for a file, its start position, measured end and whether it is a
    plain file on disk (the only kind a server may send from its descriptor)."""

    kind: BodyKind = BodyKind.STREAM
    base: int = 0
    eof: int | None = None
    on_disk: bool = False


STREAM = Body()


@dataclass(frozen=True, slots=True)
class Server:
    """What the server is proven to send by zero-copy (``row`` None: nothing), and the
    smallest window worth handing over."""

    row: ServerRow | None = None
    min_size: int = 0


NO_ZERO_COPY = Server()


@dataclass(frozen=True, slots=True)
class Step:
    """One action and what it needs: the plan (status and fields to send), the file window
    ``[start, stop)`` in file positions for ``SERVER_WINDOW``, the ``ranges`` (positions in
    the representation) with their ``framing`` for reads and slices, ``whole`` when a
    source is to be sent whole (iterated once), and the ``fixed`` body for ``FIXED``."""

    action: Action
    plan: Plan
    start: int = 0
    stop: int = 0
    base: int = 0
    ranges: tuple[ByteRange, ...] = ()
    framing: Framing | None = None
    whole: bool = False
    fixed: bytes = b""


def step_for(plan: Plan, head: bool, body: Body = STREAM, server: Server = NO_ZERO_COPY) -> Step:
    """The action that carries out ``plan`` for a body like ``body`` on ``server``."""
    kind = plan.kind
    if kind in WRITTEN_HERE or (head and kind is not Kind.PASS):
        # 9.3.2: a HEAD the middleware answers has no content; 416, 412 and 304 are written
        # here (15.5.17, 15.5.13, 15.4.5).
        return Step(Action.FIXED, plan, fixed=b"" if head else b"".join(fixed_body(kind)))
    if kind is Kind.PASS:
        return Step(Action.FORWARD, plan)
    if kind is Kind.FULL:
        whole = (ByteRange(0, plan.length, 0),)
        if body.kind is BodyKind.SOURCE:
            return Step(Action.SOURCE_RANGES, plan, ranges=whole, whole=True)
        if body.kind is BodyKind.FILE:
            return _file_step(plan, body, server, whole, None)
        return Step(Action.FORWARD, plan)
    if body.kind is BodyKind.SOURCE:
        return Step(Action.SOURCE_RANGES, plan, ranges=plan.ranges, framing=plan.framing)
    if body.kind is BodyKind.FILE:
        return _file_step(plan, body, server, plan.ranges, plan.framing)
    # A stream cannot go back: multipart parts come in ascending order (the same parts and
    # boundary as the plan's framing).
    if plan.framing is None:
        return Step(Action.STREAM_SLICE, plan, ranges=plan.ranges)
    framing = plan.framing.ascending()
    return Step(Action.STREAM_SLICE, plan, ranges=tuple(framing.ranges), framing=framing)


def _file_step(plan: Plan, body: Body, server: Server, ranges: tuple[ByteRange, ...],
               framing: Framing | None) -> Step:
    """A window to the server's zero-copy where it is proven exact, else reads by seeking."""
    if framing is None and len(ranges) == 1:
        start, stop = body.base + ranges[0].start, body.base + ranges[0].stop
        if _server_sends(body, server, start, stop):
            return Step(Action.SERVER_WINDOW, plan, start=start, stop=stop, base=body.base)
    return Step(Action.FILE_RANGES, plan, base=body.base, ranges=ranges, framing=framing)


def _server_sends(body: Body, server: Server, start: int, stop: int) -> bool:
    """Whether the server sends exactly ``[start, stop)`` of the body's file."""
    # A server sends from the descriptor (sendfile): for a compressed stream or an archive
    # member that descriptor holds other bytes than read() yields, and a pipe or procfs file
    # has no window to send. Only a plain regular file is handed over.
    if server.row is None or not body.on_disk or stop - start < server.min_size:
        return False
    return sends_window(server.row, start, stop, body.eof)


# The steps of a plain request whose fields ``plain_answer`` decided: the app's body as it
# comes (a rangeable 200, or a response passed untouched, HEAD included), or no content (a
# HEAD of a rangeable 200, 9.3.2). Their plan names the case (kind and reason, as the full
# path's); the adapter sends the app's fields, with ``Accept-Ranges: bytes`` appended for
# ``Plain.ACCEPT_RANGES``.
_PLAIN_FULL = Plan(Kind.FULL, "200 OK", [], reason="no range requested")
_PLAIN_STEPS = {
    (False, Plain.ACCEPT_RANGES): Step(Action.FORWARD, _PLAIN_FULL),
    (True, Plain.ACCEPT_RANGES): Step(Action.FIXED, _PLAIN_FULL),
    (False, Plain.UNTOUCHED): Step(Action.FORWARD, Plan(Kind.PASS, "", [],
                                                        reason="not a rangeable 200")),
}
_PLAIN_STEPS[True, Plain.UNTOUCHED] = _PLAIN_STEPS[False, Plain.UNTOUCHED]


def plain_step(head: bool, answer: Plain) -> Step:
    """The step for a ``plain_answer`` of ``ACCEPT_RANGES`` or ``UNTOUCHED``."""
    return _PLAIN_STEPS[head, answer]


@dataclass(frozen=True, slots=True)
class Response:
    """The inner response as the adapter holds it: status line, fields, and one scan of
    them (``plan.read_headers``; None when not a rangeable 200)."""

    status: str
    headers: Headers
    facts: ResponseFacts | None


def respond(request: Request, response: Response, options: Options, context: Any,
            found: FoundFile | None = None, source: RangedSource | None = None,
            server: Server = NO_ZERO_COPY,
            content: ContentValidators | NotGiven | None = NOT_GIVEN,
            ) -> tuple[Step, FoundFile | None, RangedSource | None]:
    """The 13.2.2 decision for ``response`` and the step that carries it out; ``found`` (a
    file behind the body) or ``source`` (the body itself) when the adapter has one,
    ``context`` (environ or scope) for the predicate, ``content`` the file's content
    validators when the adapter computed them (``decision.decide_response``). Also the file
    or source the step reads, when it reads one."""
    decision = decide_response(request, response.status, response.headers, found, options,
                               context, source, response.facts, content)
    if decision.source is not None:
        body = Body(BodyKind.SOURCE)
    elif decision.found is not None:
        body = Body(BodyKind.FILE, decision.found.base, decision.eof, decision.on_disk)
    else:
        body = STREAM
    return (step_for(decision.plan, request.method == "HEAD", body, server), decision.found,
            decision.source)
