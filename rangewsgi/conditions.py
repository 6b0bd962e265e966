"""Preconditions (RFC 9110 13.1, 13.2) evaluated against a response's validators.

Arguments are raw field values: ``None`` when the field is absent, the value as received
otherwise (a repeated field joined with ", "). Nothing here raises on hostile input, and every
parser is linear in the length of its input.

Decisions where the RFC leaves room:

- An If-Match or If-None-Match value that is neither ``*`` nor a valid list of entity-tags
  (one bad member is enough) is neither of the forms 13.1.1 and 13.1.2 evaluate, so their
  "Otherwise" branch applies: If-Match is false (412) and If-None-Match is true (no 304).
  An empty list (``""`` or only commas, 5.6.1.2) is valid and matches nothing.
- A response ETag that is not a valid entity-tag counts as no entity tag: no list matches it.
- Response Last-Modified and Date values are read with the same strict HTTP-date parser; one
  that does not parse counts as absent.
- If-Modified-Since later than the server's current time (the response's Date, else ``now``)
  is ignored.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timezone
from typing import Literal, NamedTuple

from .httpdate import format_http_date, parse_http_date

__all__ = [
    "EntityTag",
    "Precondition",
    "evaluate_preconditions",
    "file_validators",
    "if_range_holds",
    "is_strong",
    "parse_entity_tag",
    "parse_entity_tag_list",
    "strong_match",
    "weak_match",
]

_OWS = " \t"
# RFC 9110 8.8.3: etagc = %x21 / %x23-7E / obs-text. One negated class: no backtracking.
_NOT_ETAGC = re.compile(r"[^\x21\x23-\x7e\x80-\xff]")
# Characters that cannot occur anywhere in "*" / #entity-tag: all but HTAB, SP, DQUOTE, etagc.
_NOT_IN_LIST = re.compile(r"[^\t\x20-\x7e\x80-\xff]")
_NS_PER_SECOND = 1_000_000_000


class EntityTag(NamedTuple):
    """An entity-tag (8.8.3): the weakness indicator and the opaque-tag with its DQUOTEs."""

    weak: bool
    opaque: str


class Precondition(enum.Enum):
    """The outcome of RFC 9110 13.2.2 steps 1 to 4 for GET and HEAD."""

    PROCEED = "proceed"  # go on to If-Range (step 5) and the method
    NOT_MODIFIED = "not modified"  # 304 (Not Modified)
    FAILED = "failed"  # 412 (Precondition Failed)


def parse_entity_tag(value: str) -> EntityTag | None:
    """The entity-tag (8.8.3) in ``value`` with surrounding OWS, or None if it is not one."""
    value = value.strip(_OWS)
    # 8.8.3: weak = %s"W/" (case-sensitive); opaque-tag = DQUOTE *etagc DQUOTE.
    weak = value.startswith("W/")
    opaque = value[2:] if weak else value
    if (len(opaque) < 2 or opaque[0] != '"' or opaque[-1] != '"'
            or _NOT_ETAGC.search(opaque, 1, len(opaque) - 1)):
        return None
    return EntityTag(weak, opaque)


def parse_entity_tag_list(value: str) -> tuple[EntityTag, ...] | Literal["*"] | None:
    """An If-Match / If-None-Match value (13.1.1, 13.1.2): ``"*"``, the tags, or None if invalid.

    ``"*" / #entity-tag`` with the recipient's list syntax of 5.6.1.2:
    ``[ element ] *( OWS "," OWS [ element ] )``. A comma may occur inside an opaque-tag, so
    the value is cut at DQUOTEs, which occur only around opaque-tags.
    """
    value = value.strip(_OWS)
    if value == "*":
        return "*"
    if _NOT_IN_LIST.search(value):
        return None
    pieces = value.split('"')  # gap, opaque, gap, opaque, ..., gap
    last = len(pieces) - 1
    if last % 2:
        return None  # a DQUOTE without its pair
    tags: list[EntityTag] = []
    weak = False
    for index in range(0, last + 1, 2):
        gap = pieces[index]
        next_weak = index != last and gap.endswith("W/")
        if next_weak:
            gap = gap[:-2]
        # Between tags only OWS and commas, and at least one comma; empty elements are allowed.
        if gap.strip(" \t,") or (0 < index < last and "," not in gap):
            return None
        if index:
            opaque = pieces[index - 1]
            if " " in opaque or "\t" in opaque:  # not etagc
                return None
            tags.append(EntityTag(weak, f'"{opaque}"'))
        weak = next_weak
    return tuple(tags)


def strong_match(a: EntityTag, b: EntityTag) -> bool:
    """8.8.3.2: "both are not weak and their opaque-tags match character-by-character"."""
    return not a.weak and not b.weak and a.opaque == b.opaque


def weak_match(a: EntityTag, b: EntityTag) -> bool:
    """8.8.3.2: "opaque-tags match character-by-character, regardless of either ... weak"."""
    return a.opaque == b.opaque


def _clock(now: datetime | None) -> datetime:
    """``now`` as an aware datetime (naive means UTC), or the current time."""
    if now is None:
        return datetime.now(timezone.utc)
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def _http_date(value: str | None, now: datetime | None) -> datetime | None:
    """A field's HTTP-date without its OWS, or None."""
    return None if value is None else parse_http_date(value.strip(_OWS), now)


def _tag(value: str | None) -> EntityTag | None:
    """The response's entity tag, or None."""
    return None if value is None else parse_entity_tag(value)


def is_strong(etag: str | None) -> bool:
    """True for a valid strong entity-tag (8.8.3: no ``W/``): the selected representation's
    bytes are the same whenever it is sent (8.8.1: "changes to the representation data ...
    would be observable in a 200 (OK) response to GET")."""
    tag = _tag(etag)
    return tag is not None and not tag.weak


def if_range_holds(if_range: str, etag: str | None, last_modified: str | None,
                   date: str | None, now: datetime | None = None) -> bool:
    """True when the Range header may be honoured (RFC 9110 13.1.5).

    ``etag``, ``last_modified`` and ``date`` are the response's own header values.
    """
    value = if_range.strip(_OWS)
    # 13.1.5: "A valid entity-tag can be distinguished from a valid HTTP-date by examining the
    # first three characters for a DQUOTE."
    if '"' in value[:3]:
        # 13.1.5: true only if it "exactly matches ... using the strong comparison function"
        # (8.8.3.2: "both are not weak and their opaque-tags match character-by-character"),
        # so a weak tag on either side never matches.
        requested_tag, current = parse_entity_tag(value), _tag(etag)
        return requested_tag is not None and current is not None and strong_match(
            requested_tag, current)
    requested = parse_http_date(value, now)
    modified = _http_date(last_modified, now)
    if requested is None or modified is None or requested != modified:
        return False  # 13.1.5: "comparison is by exact match"
    # 13.1.5: false if the Last-Modified "is not a strong validator"; 8.8.2.2: it is strong
    # when the Date is "at least one second after the Last-Modified value".
    sent = _http_date(date, now) or _clock(now)
    return (sent - modified).total_seconds() >= 1


def _if_match_holds(if_match: str, etag: str | None) -> bool:
    """13.1.1 for a selected representation that exists (the response is a 200)."""
    tags = parse_entity_tag_list(if_match)
    # 13.1.1: "*": "true if the origin server has a current representation".
    if tags == "*":
        return True
    # 13.1.1: a list: "true if any of the listed tags match"; "Otherwise, the condition is
    # false". "An origin server MUST use the strong comparison function".
    current = _tag(etag)
    return tags is not None and current is not None and any(
        strong_match(tag, current) for tag in tags)


def _if_none_match_holds(if_none_match: str, etag: str | None) -> bool:
    """13.1.2 for a selected representation that exists (the response is a 200)."""
    tags = parse_entity_tag_list(if_none_match)
    # 13.1.2: "*": "false if the origin server has a current representation".
    if tags == "*":
        return False
    # 13.1.2: a list: "false if one of the listed tags matches"; "Otherwise, the condition is
    # true". "A recipient MUST use the weak comparison function".
    current = _tag(etag)
    return tags is None or current is None or not any(
        weak_match(tag, current) for tag in tags)


def evaluate_preconditions(if_match: str | None, if_unmodified_since: str | None,
                           if_none_match: str | None, if_modified_since: str | None,
                           etag: str | None, last_modified: str | None, date: str | None,
                           now: datetime | None = None) -> Precondition:
    """RFC 9110 13.2.2 steps 1-4 for a GET or HEAD whose response would be a 200.

    The first four arguments are the request's fields, the next three the response's; ``now``
    (default: the clock) is the server's time when the response has no valid Date.
    """
    # Step 1: "When recipient is the origin server and If-Match is present ... if false,
    # respond 412".
    if if_match is not None:
        if not _if_match_holds(if_match, etag):
            return Precondition.FAILED
    # Step 2: "If-Match is not present, and If-Unmodified-Since is present". 13.1.4: ignored
    # when "not a valid HTTP-date" or when the resource "does not have a modification date";
    # true if the "last modification date is earlier than or equal to the date provided".
    elif if_unmodified_since is not None:
        since = _http_date(if_unmodified_since, now)
        modified = _http_date(last_modified, now) if since is not None else None
        if since is not None and modified is not None and modified > since:
            return Precondition.FAILED
    # Step 3: "When If-None-Match is present ... if false for GET/HEAD, respond 304".
    if if_none_match is not None:
        if not _if_none_match_holds(if_none_match, etag):
            return Precondition.NOT_MODIFIED
    # Step 4: "If-None-Match is not present, and If-Modified-Since is present". 13.1.3: ignored
    # when "not a valid HTTP-date, the field value has more than one member" (no list parses
    # as a date) or without a modification date; false if the "last modification date is
    # earlier or equal to the date provided".
    elif if_modified_since is not None:
        since = _http_date(if_modified_since, now)
        modified = _http_date(last_modified, now) if since is not None else None
        # 13.1.3: "MUST interpret an If-Modified-Since field value's timestamp in terms of the
        # origin server's clock": a date after that clock's current time was not issued by it
        # (RFC 2616 14.25: "A date which is later than the server's current time is
        # invalid"), and a 304 on it would hide changes, so it is ignored.
        if (since is not None and modified is not None and modified <= since
                and since <= (_http_date(date, now) or _clock(now))):
            return Precondition.NOT_MODIFIED
    return Precondition.PROCEED


def file_validators(size: int, mtime_ns: int, now: datetime | None = None) -> tuple[str, str]:
    """A strong ETag and a Last-Modified IMF-fixdate for a file of ``size`` bytes.

    The ETag comes only from the size and the modification time in nanoseconds, so one file
    gives one tag on every machine (8.8.3.1 lists "a combination of various file attributes"
    and "a modification timestamp that has sub-second resolution").
    """
    etag = f'"{mtime_ns:x}-{size:x}"'
    modified = mtime_ns // _NS_PER_SECOND  # whole seconds, rounded down
    # 8.8.2.1: "If the last modification time is derived from implementation-specific metadata
    # that evaluates to some time in the future, according to the origin server's clock, then
    # the origin server MUST replace that value with the message origination date."
    current = int(_clock(now).timestamp() // 1)
    return etag, format_http_date(min(modified, current))
