"""The ``Range`` request header: parsing (RFC 9110 14.1.1) and resolution (14.1.2).

Sans-IO: strings in, integers out. Every malformed input gives ``None`` ("ignore the header"),
never an exception.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["ByteRange", "RangeSpec", "TooManyRanges", "parse_range", "resolve"]

# RFC 9110 14.1.1: int-range = first-pos "-" [ last-pos ]; suffix-range = "-" suffix-length;
# both positions are 1*DIGIT. [0-9] is ASCII-only, unlike str.isdigit() ("²" is a digit there).
# 5.6.1.2: range-set = 1#range-spec, elements separated by OWS "," OWS, empty ones allowed;
# 14.1.2's example "bytes= 0-999, 4500-5499, -1000" has OWS after "=".
_ELEMENT = r"(?:[0-9]+-[0-9]*|-[0-9]+)[ \t]*"
_RANGE_SET = re.compile(rf"[ \t]*(?:{_ELEMENT})?(?:,[ \t]*(?:{_ELEMENT})?)*")
_SPEC = re.compile(r"([0-9]*)-([0-9]*)")

# A position with more digits than this exceeds any representation length that can exist; it is
# clamped instead of converted (RFC 9110 14.1.2: "recipients MUST anticipate potentially large
# decimal numerals and prevent parsing errors due to integer conversion overflows").
_MAX_DIGITS = 19
_HUGE = int("1" + "0" * _MAX_DIGITS)


class RangeSpec(NamedTuple):
    """One range-spec: ``first`` is None for a suffix-range; ``last`` None when open-ended."""

    first: int | None
    last: int | None


class ByteRange(NamedTuple):
    """A satisfiable range as a half-open interval ``[start, stop)``, with its request order."""

    start: int
    stop: int
    order: int


def _number(digits: str) -> int:
    """Convert ASCII digits without ``int()``'s 4300-digit limit: huge values clamp."""
    if len(digits) <= _MAX_DIGITS:
        return int(digits)
    significant = digits.lstrip("0")
    if len(significant) > _MAX_DIGITS:
        return _HUGE
    return int(significant) if significant else 0


def _less(a: str, b: str) -> bool:
    """Exact numeric ``a < b`` for ASCII digit strings of any length."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) < (len(b), b)


class TooManyRanges(Exception):
    """More range-specs than the configured limit (RFC 9110 17.15)."""


def parse_range(value: str, max_ranges: int) -> list[RangeSpec] | None:
    """Parse a ``Range`` value; None if the unit is not ``bytes`` or the header is invalid.

    Raises TooManyRanges when there are more than ``max_ranges`` specs (RFC 9110 17.15).
    """
    unit, sep, range_set = value.partition("=")
    # RFC 9110 14.1: "All range unit names are case-insensitive". An unknown unit MUST be
    # ignored (14.2), as must an invalid ranges-specifier (14.2 MAY).
    if not sep or unit.lower() != "bytes":
        return None
    # 5.6.1.2 asks recipients to accept "a reasonable number of empty list elements": beyond a
    # few per allowed range the header is abuse, refused before anything is allocated.
    if range_set.count(",") > 4 * max_ranges + 16:
        raise TooManyRanges(range_set.count(","))
    # The whole range-set is checked in one pass, then the specs are extracted in one pass.
    if _RANGE_SET.fullmatch(range_set) is None:
        return None
    pairs = _SPEC.findall(range_set)
    # 14.1.1: range-set = 1#range-spec: at least one element.
    if not pairs:
        return None
    if len(pairs) > max_ranges:
        raise TooManyRanges(len(pairs))
    specs: list[RangeSpec] = []
    for first, last in pairs:
        if not first:
            specs.append(RangeSpec(None, _number(last)))
            continue
        first_pos = _number(first)
        last_pos = _number(last) if last else None
        # 14.1.1: "An int-range is invalid if the last-pos value is present and less than the
        # first-pos", and a ranges-specifier with an invalid range-spec is invalid.
        if last_pos is not None and last_pos <= first_pos and _less(last, first):
            return None
        specs.append(RangeSpec(first_pos, last_pos))
    return specs


def resolve(specs: list[RangeSpec], length: int) -> list[ByteRange]:
    """Satisfiable ranges of ``specs`` for a representation of ``length`` bytes, coalesced.

    RFC 9110 14.1.2: an int-range is satisfiable if first-pos < length, a suffix-range if its
    suffix-length is non-zero; last-pos >= length and suffixes longer than the representation
    are clamped. Overlapping and adjacent ranges merge (15.3.7.2 MAY coalesce); each merged
    range keeps the request position of its earliest member, and the result is in request
    order (15.3.7.2 SHOULD send the parts in the order requested).
    """
    ranges: list[ByteRange] = []
    for order, (first, last) in enumerate(specs):
        if first is None:
            assert last is not None
            if last == 0 or length == 0:
                # "-0" is unsatisfiable. A suffix of an empty representation is satisfiable
                # (14.1.2) but selects nothing; the caller answers 200 for empty bodies (14.2).
                continue
            ranges.append(ByteRange(max(length - last, 0), length, order))
        elif first < length:
            stop = length if last is None or last >= length else last + 1
            ranges.append(ByteRange(first, stop, order))
    if len(ranges) < 2:
        return ranges
    ranges.sort()
    merged = [ranges[0]]
    for current in ranges[1:]:
        previous = merged[-1]
        if current.start <= previous.stop:
            merged[-1] = ByteRange(previous.start, max(previous.stop, current.stop),
                                   min(previous.order, current.order))
        else:
            merged.append(current)
    merged.sort(key=lambda r: r.order)
    return merged
