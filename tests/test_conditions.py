"""If-Range (RFC 9110 13.1.5) with strong comparison (8.8.3.2) and strong dates (8.8.2.2)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rangewsgi.conditions import if_range_holds

LM = "Sat, 21 Nov 2026 10:00:00 GMT"
LATER = "Sat, 21 Nov 2026 10:00:01 GMT"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("if_range", "etag", "holds"), [
    ('"abc"', '"abc"', True),
    (' "abc" ', '"abc"', True),
    ('"abc"', '"abd"', False),
    ('W/"abc"', '"abc"', False),  # 13.1.5: a weak tag never matches
    ('"abc"', 'W/"abc"', False),
    ('W/"abc"', 'W/"abc"', False),
    ('"abc"', None, False),
    ('"abc', '"abc"', False),  # not a valid entity-tag
    ('"a"b"', '"a"b"', False),
    ('""', '""', True),
])
def test_etag_form(if_range: str, etag: str | None, holds: bool) -> None:
    assert if_range_holds(if_range, etag, LM, LATER, NOW) is holds


def test_date_form_exact_match_of_a_strong_last_modified() -> None:
    assert if_range_holds(LM, None, LM, LATER, NOW)
    # Other HTTP-date formats of the same instant match too (compared as dates).
    assert if_range_holds("Saturday, 21-Nov-26 10:00:00 GMT", None, LM, LATER, NOW)


def test_date_form_is_exact_not_earlier_or_later() -> None:
    # 13.1.5: "comparison is by exact match", not <= as for If-Unmodified-Since.
    assert not if_range_holds("Sat, 21 Nov 2026 10:00:01 GMT", None, LM, LATER, NOW)
    assert not if_range_holds("Sat, 21 Nov 2026 09:59:59 GMT", None, LM, LATER, NOW)


def test_date_form_needs_a_strong_validator() -> None:
    # 8.8.2.2: Last-Modified is strong only if the Date is at least one second later.
    assert not if_range_holds(LM, None, LM, LM, NOW)
    # Without a Date header, the current time stands in for it.
    assert if_range_holds(LM, None, LM, None, NOW)
    assert not if_range_holds(LM, None, LM, None,
                              datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=timezone.utc))


@pytest.mark.parametrize("if_range", [
    "garbage", "garbage GMT", "Sat, 99 Nov 2026 10:00:00 GMT", "", " ",
    "Sat, 21 Nov 99999999999999999999 10:00:00 GMT", "\x00\xff", "W/", "W/x",
])
def test_garbage_is_false_never_an_error(if_range: str) -> None:
    assert if_range_holds(if_range, '"abc"', LM, LATER, NOW) is False


def test_date_form_without_last_modified_is_false() -> None:
    assert not if_range_holds(LM, '"abc"', None, LATER, NOW)
    assert not if_range_holds(LM, '"abc"', "not a date", LATER, NOW)
