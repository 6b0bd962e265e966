"""What to answer: the pure decision from request fields, response status/headers and length.

No WSGI and no I/O here: ``plan()`` turns facts into a ``Plan`` value (pass through, full 200,
single-part 206, multipart 206 or 416) with the exact status line and header list to send.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from .conditions import Precondition, evaluate_preconditions, if_range_holds
from .multipart import Framing, content_range
from .ranges import ByteRange, TooManyRanges, parse_range, resolve

__all__ = ["LENGTH_UNKNOWN", "WRITTEN_HERE", "Headers", "Kind", "Limits", "Plan", "Request",
           "ResponseFacts", "decide", "fixed_body", "plan", "read_headers"]

Headers = list[tuple[str, str]]


class Kind(enum.Enum):
    """The shape of the answer."""

    # Members are singletons: hashing by identity runs no Python code per set or dict lookup.
    __hash__ = object.__hash__

    PASS = "pass"  # not ours to touch: forwarded byte for byte
    FULL = "full"  # a rangeable 200: Accept-Ranges (and Content-Length) added
    PARTIAL = "partial"  # 206 with one range
    MULTIPART = "multipart"  # 206 multipart/byteranges
    UNSATISFIABLE = "unsatisfiable"  # 416
    NOT_MODIFIED = "not modified"  # 304
    PRECONDITION_FAILED = "precondition failed"  # 412


# The reason of a rangeable 200 that passes through because its length is not known.
LENGTH_UNKNOWN = "length unknown"

# The answers whose body the middleware writes itself (``fixed_body``); the app's is closed.
WRITTEN_HERE = frozenset({Kind.UNSATISFIABLE, Kind.NOT_MODIFIED, Kind.PRECONDITION_FAILED})


class Request(NamedTuple):
    """The request fields the decision reads; ``method`` is ``GET`` or ``HEAD``.

    A tuple: made once per request, it must cost next to nothing.
    """

    method: str
    range: str | None = None
    if_range: str | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None

    @property
    def has_preconditions(self) -> bool:
        return (self.if_match is not None or self.if_none_match is not None
                or self.if_modified_since is not None or self.if_unmodified_since is not None)


@dataclass(frozen=True, slots=True)
class Limits:
    """Abuse limits (RFC 9110 17.15)."""

    max_ranges: int = 100
    max_multipart_excess: int = 4096


@dataclass(slots=True)
class ResponseFacts:
    """What one scan of the inner response's headers tells."""

    length: int | None = None  # from a single valid Content-Length
    rangeable: bool = True  # False for Transfer-Encoding, Content-Range, Accept-Ranges: none
    accept_ranges: bool = False  # the app already sent Accept-Ranges
    etag: str | None = None
    last_modified: str | None = None
    date: str | None = None
    content_type: str | None = None
    coded: bool = False  # a Content-Encoding other than identity (RFC 9110 8.4)


@dataclass(slots=True)
class Plan:
    """The decision, with the status line and headers to send."""

    kind: Kind
    status: str
    headers: Headers
    ranges: tuple[ByteRange, ...] = ()
    framing: Framing | None = None
    reason: str = ""
    length: int = 0  # the representation's length, for FULL


_UNSATISFIABLE_BODY = b"416 Range Not Satisfiable\n"
_FAILED_BODY = b"412 Precondition Failed\n"

# Content-Length and the validators-to-be-recomputed are dropped from a 206: 15.3.7 says its
# Content-Length "indicates the number of octets in the content of this message", and a digest
# of the whole representation does not describe the content of a partial response.
_DROP_FROM_206 = frozenset({"content-length", "content-md5", "content-digest"})
# A 416 carries no representation: its content and caching fields are the 200's, not its own
# (nor is Repr-Digest, RFC 9530 3: the digest of a representation it does not enclose).
# Repr-Digest stays on a 206: it describes the selected representation, not the part.
_DROP_FROM_416 = frozenset({
    "content-length", "content-md5", "content-digest", "content-type", "content-encoding",
    "content-language", "content-location", "content-disposition", "cache-control", "expires",
    "accept-ranges", "repr-digest",
})


def _digits(value: str) -> int | None:
    """Non-negative ASCII decimal (RFC 9110 8.6: Content-Length = 1*DIGIT), else None."""
    value = value.strip(" \t")
    if not value or not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    return int(value)


def read_headers(status: str, headers: Headers) -> ResponseFacts | None:
    """Scan the inner response once; None when it must pass through untouched.

    RFC 9110 14.2: ranges apply "only if the result in absence of the Range header field would
    be a 200 (OK) response". Responses already ranged (Content-Range), framed by the app
    (Transfer-Encoding) or marked ``Accept-Ranges: none`` (14.3) are not touched.
    """
    if status[:3] != "200" or status[3:4] not in ("", " "):
        return None
    facts = ResponseFacts()
    lengths = 0
    for name, value in headers:
        key = name.lower()
        if key == "content-length":
            lengths += 1
            facts.length = _digits(value)
            if facts.length is None or lengths > 1:
                return None
        elif key == "content-type":
            facts.content_type = value
        elif key == "content-encoding":
            # 8.4: Content-Encoding = #content-coding; "identity" is no coding at all.
            codings = {coding.strip(" \t").lower() for coding in value.split(",")}
            facts.coded = facts.coded or bool(codings - {"", "identity"})
        elif key == "etag":
            facts.etag = value
        elif key == "last-modified":
            facts.last_modified = value
        elif key == "date":
            facts.date = value
        elif key == "accept-ranges":
            # 14.3: Accept-Ranges = acceptable-ranges, a list of range units; a response
            # whose list does not offer "bytes", or says "none", is not ranged as bytes.
            units = {unit.strip(" \t").lower() for unit in value.split(",")}
            if "bytes" not in units or "none" in units:
                return None
            facts.accept_ranges = True
        elif key in ("transfer-encoding", "content-range"):
            return None
    return facts


def _full(facts: ResponseFacts, status: str, headers: Headers, length: int,
          reason: str) -> Plan:
    """A 200 with ``Accept-Ranges: bytes`` (14.3) and a Content-Length."""
    out = list(headers)
    if facts.length is None:
        out.append(("Content-Length", str(length)))
    if not facts.accept_ranges:
        out.append(("Accept-Ranges", "bytes"))
    return Plan(Kind.FULL, status, out, reason=reason, length=length)


def plan(range_value: str | None, if_range: str | None, status: str, headers: Headers,
         facts: ResponseFacts, length: int, limits: Limits) -> Plan:
    """Decide the answer for a rangeable 200 of ``length`` bytes.

    ``range_value`` is None for HEAD and for GET without Range (RFC 9110 14.2: only GET is
    ranged, so the adapter passes None for every other method).
    """
    if range_value is None:
        return _full(facts, status, headers, length, "no range requested")
    if length == 0:
        # 14.2: a server "MAY ignore a Range header field when the selected representation has
        # no content".
        return _full(facts, status, headers, length, "empty representation")
    # 13.1.5 / 13.2.2 step 5: If-Range first; when false, "ignore the Range header field".
    if if_range is not None and not if_range_holds(if_range, facts.etag, facts.last_modified,
                                                   facts.date):
        return _full(facts, status, headers, length, "If-Range does not match")
    try:
        specs = parse_range(range_value, limits.max_ranges)
    except TooManyRanges:
        # 14.2 MAY ignore; 17.15: "Servers ought to ignore, coalesce, or reject egregious range
        # requests".
        return _full(facts, status, headers, length, "too many ranges")
    if specs is None:
        # 14.2: an unknown unit MUST be ignored; an invalid ranges-specifier MAY be.
        return _full(facts, status, headers, length, "invalid or non-bytes Range")
    ranges = resolve(specs, length)
    if not ranges:
        return _unsatisfiable(headers, length)
    kept = [(n, v) for n, v in headers if n.lower() not in _DROP_FROM_206]
    if not facts.accept_ranges:
        kept.append(("Accept-Ranges", "bytes"))
    if len(ranges) == 1:
        # 15.3.7.1: a single part "MUST generate a Content-Range header field".
        only = ranges[0]
        kept.append(("Content-Range", content_range(only, length)))
        kept.append(("Content-Length", str(only.stop - only.start)))
        return Plan(Kind.PARTIAL, "206 Partial Content", kept, (only,), reason="one range")
    framing = Framing(ranges, length, facts.content_type)
    if framing.content_length > length + limits.max_multipart_excess:
        # 17.15: a multipart answer much larger than the representation is a denial-of-service
        # shape (CVE-2011-3192); the plain 200 is smaller.
        return _full(facts, status, headers, length, "multipart larger than the representation")
    # 15.3.7.2: multipart/byteranges with the boundary, and "MUST NOT generate a Content-Range
    # header field in the HTTP header section of a multiple part response".
    out = [(n, v) for n, v in kept if n.lower() != "content-type"]
    out.append(("Content-Type", framing.content_type))
    out.append(("Content-Length", str(framing.content_length)))
    return Plan(Kind.MULTIPART, "206 Partial Content", out, tuple(ranges), framing,
                reason=f"{len(ranges)} ranges")


def _unsatisfiable(headers: Headers, length: int) -> Plan:
    """416 with ``Content-Range: bytes */length`` (14.4, 15.5.17)."""
    out = [(n, v) for n, v in headers if n.lower() not in _DROP_FROM_416]
    out += [
        ("Content-Range", f"bytes */{length}"),
        ("Accept-Ranges", "bytes"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(_UNSATISFIABLE_BODY))),
    ]
    return Plan(Kind.UNSATISFIABLE, "416 Range Not Satisfiable", out,
                reason="no satisfiable range")


def fixed_body(kind: Kind) -> list[bytes]:
    """The body the middleware writes itself for a 416, 412 or 304 (none)."""
    if kind is Kind.UNSATISFIABLE:
        return [_UNSATISFIABLE_BODY]
    if kind is Kind.PRECONDITION_FAILED:
        return [_FAILED_BODY]
    return []


# 15.4.5: a 304 carries Content-Location, Date, ETag, Vary, Cache-Control and Expires as the
# 200 would, and "SHOULD NOT generate representation metadata other than the above listed
# fields unless said metadata exists for the purpose of guiding cache updates (e.g.,
# Last-Modified might be useful if the response does not have an ETag field)". A 304 has no
# content, so nothing describes content either.
_DROP_FROM_304 = frozenset({
    "content-length", "content-md5", "content-digest", "content-type", "content-encoding",
    "content-language", "content-disposition", "content-range", "accept-ranges",
})


def decide(request: Request, status: str, headers: Headers, facts: ResponseFacts,
           length: int | None, limits: Limits, conditional: bool = True,
           unranged: str = LENGTH_UNKNOWN) -> Plan:
    """RFC 9110 13.2.2 in order: the preconditions (steps 1-4), then If-Range and Range
    (step 5) for a GET, or the full 200. ``length`` None: preconditions only, and a 200
    passes through with the reason ``unranged``."""
    if conditional and request.has_preconditions:
        outcome = evaluate_preconditions(
            request.if_match, request.if_unmodified_since, request.if_none_match,
            request.if_modified_since, facts.etag, facts.last_modified, facts.date)
        if outcome is Precondition.FAILED:
            return _failed(headers)
        if outcome is Precondition.NOT_MODIFIED:
            return _not_modified(headers, facts)
    if length is None:
        return Plan(Kind.PASS, status, headers, reason=unranged)
    range_value = request.range if request.method == "GET" else None
    return plan(range_value, request.if_range, status, headers, facts, length, limits)


def _not_modified(headers: Headers, facts: ResponseFacts) -> Plan:
    """304 (15.4.5) for GET/HEAD whose If-None-Match or If-Modified-Since says unchanged."""
    drop = _DROP_FROM_304 | {"last-modified"} if facts.etag is not None else _DROP_FROM_304
    out = [(n, v) for n, v in headers if n.lower() not in drop]
    return Plan(Kind.NOT_MODIFIED, "304 Not Modified", out, reason="not modified")


def _failed(headers: Headers) -> Plan:
    """412 (15.5.13): If-Match or If-Unmodified-Since false; never the representation."""
    out = [(n, v) for n, v in headers if n.lower() not in _DROP_FROM_416]
    out += [("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(_FAILED_BODY)))]
    return Plan(Kind.PRECONDITION_FAILED, "412 Precondition Failed", out,
                reason="precondition failed")
