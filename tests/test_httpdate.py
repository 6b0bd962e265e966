"""HTTP-date (RFC 9110 5.6.7): strict parsing of the three formats, IMF-fixdate output."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rangewsgi.httpdate import format_http_date, parse_http_date

UTC = timezone.utc
EXAMPLE = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)  # the 5.6.7 example instant
NOW = datetime(2026, 12, 2, 0, 54, 55, tzinfo=UTC)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAYS_L = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FIRST = -62_135_596_800  # 0001-01-01T00:00:00Z
LAST = 253_402_300_799  # 9999-12-31T23:59:59Z


def imf(t: datetime, day_name: str | None = None) -> str:
    """IMF-fixdate written in the test, independently of the module."""
    name = DAYS[t.weekday()] if day_name is None else day_name
    return (f"{name}, {t.day:02d} {MONTHS[t.month - 1]} {t.year:04d} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT")


def rfc850(t: datetime, day_name: str | None = None) -> str:
    name = DAYS_L[t.weekday()] if day_name is None else day_name
    return (f"{name}, {t.day:02d}-{MONTHS[t.month - 1]}-{t.year % 100:02d} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT")


def asctime(t: datetime, day_name: str | None = None) -> str:
    name = DAYS[t.weekday()] if day_name is None else day_name
    return (f"{name} {MONTHS[t.month - 1]} {t.day:2d} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} {t.year:04d}")


# --- the three formats (5.6.7) ------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
    "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850 format
    "Sun Nov  6 08:49:37 1994",  # ANSI C's asctime() format
    "Sun Nov 06 08:49:37 1994",  # 5.6.7 date3: month SP ( 2DIGIT / ( SP 1DIGIT ))
])
def test_the_three_formats_of_the_rfc_example(value: str) -> None:
    # 5.6.7: "A recipient that parses a timestamp value in an HTTP field MUST accept all three
    # HTTP-date formats."
    parsed = parse_http_date(value, NOW)
    assert parsed == EXAMPLE
    assert parsed is not None and parsed.tzinfo is UTC


def test_every_weekday_name_and_month_name() -> None:
    for days in range(0, 7 * 60, 5):
        t = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC) + timedelta(days=days)
        for text in (imf(t), rfc850(t), asctime(t)):
            assert parse_http_date(text, NOW) == t, text


@pytest.mark.parametrize("value", [
    "sun, 06 Nov 1994 08:49:37 GMT",  # 5.6.7: "HTTP-date is case sensitive"
    "SUN, 06 Nov 1994 08:49:37 GMT",
    "Sun, 06 nov 1994 08:49:37 GMT",
    "Sun, 06 NOV 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 08:49:37 gmt",
    "sunday, 06-Nov-94 08:49:37 GMT",
    "Sunday, 06-nov-94 08:49:37 GMT",
    "Sun nov  6 08:49:37 1994",
    "Sun, 06 Nov 1994 08:49:37 UTC",  # GMT = %s"GMT" only
    "Sun, 06 Nov 1994 08:49:37 UT ",
    "Sun, 06 Nov 1994 08:49:37 +0000",  # no numeric zone
    "Sun, 06 Nov 1994 08:49:37 GMT+0",
    "Sun, 06 Nov 1994 08:49:37 -0000",
    "Sun, 06 Nov 1994 08:49:37 GMT ",  # nothing after the date
    " Sun, 06 Nov 1994 08:49:37 GMT",  # the caller strips OWS, not the parser
    "Sun, 06 Nov 1994 08:49:37 GMTx",
    "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",  # a list
    "Sun Nov  6 08:49:37 1994 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT ",
    "Sun,  06 Nov 1994 08:49:37 GMT",  # 5.6.7: no whitespace beyond the grammar's SP
    "Sun, 6 Nov 1994 08:49:37 GMT",  # day = 2DIGIT
    "Sun, 06 Nov 94 08:49:37 GMT",  # year = 4DIGIT in IMF-fixdate
    "Sunday, 06-Nov-1994 08:49:37 GMT",  # 2DIGIT in rfc850-date
    "Sun, 06-Nov-94 08:49:37 GMT",  # rfc850-date needs day-name-l
    "Sunday, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate needs day-name
    "Sun Nov 6 08:49:37 1994",  # date3 needs the second SP before a 1-digit day
    "Sun Nov  06 08:49:37 1994",
    "Sun Nov 6  08:49:37 1994",
    "Sun Nov  6 08:49:37  1994",
    "Sun, 06 Nov 1994 8:49:37 GMT",
    "Sun, 06 Nov 1994 08:49 GMT",
    "Sun, 06 Nov 1994 08.49.37 GMT",
    "Sun 06 Nov 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994T08:49:37 GMT",
    "1994-11-06T08:49:37Z",
    "784111777",
    "", " ", "GMT", "garbage", "garbage GMT",
])
def test_not_an_http_date(value: str) -> None:
    assert parse_http_date(value, NOW) is None


@pytest.mark.parametrize("value", [
    "Mon, 06 Nov 1994 08:49:37 GMT",
    "Monday, 06-Nov-94 08:49:37 GMT",
    "Mon Nov  6 08:49:37 1994",
    "Sat, 06 Nov 1994 08:49:37 GMT",
])
def test_a_wrong_weekday_is_invalid(value: str) -> None:
    # 5.6.7: "The semantics of day-name, day, month, year, and time-of-day are the same as
    # those defined for the Internet Message Format" (RFC 5322 3.3: the day-of-week "MUST be
    # the day implied by the date"). A date that contradicts itself is not matched.
    assert parse_http_date(value, NOW) is None


@pytest.mark.parametrize("value", [
    "Sun, 06 Nov 1994 24:00:00 GMT",  # hour 00-23
    "Sun, 06 Nov 1994 08:60:00 GMT",  # minute 00-59
    "Sun, 06 Nov 1994 08:49:61 GMT",  # second 00-60
    "Sun, 06 Nov 1994 08:49:99 GMT",
    "Sun, 06 Nov 1994 08:49:60 GMT",  # 60 only at 23:59:60
    "Sun, 06 Nov 1994 23:58:60 GMT",
    "Fri, 31 Nov 1994 08:49:37 GMT",  # November has 30 days
    "Tue, 00 Nov 1994 08:49:37 GMT",
    "Sun, 32 Nov 1994 08:49:37 GMT",
    "Mon, 29 Feb 2100 00:00:00 GMT",  # not a leap year
    "Fri, 29 Feb 2019 00:00:00 GMT",
    "Sat, 01 Jan 0000 00:00:00 GMT",  # no year 0
    "Sun, 06 Nov 199A 08:49:37 GMT",
    "Sun, 06 Nov 1994 08:4\xb2:37 GMT",  # "²" is a digit to str.isdigit, not to 5.6.7
    "Sun, \xb20 Nov 1994 08:49:37 GMT",
    "Sun, 06 Nov \u0661\u0669\u0669\u0664 08:49:37 GMT",  # Arabic-Indic digits
    "Sun, -6 Nov 1994 08:49:37 GMT",
    "Sun, +6 Nov 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 +8:49:37 GMT",
    "Sun Nov  0 08:49:37 1994",
    "Sunday, 06-Nov-9x 08:49:37 GMT",
])
def test_out_of_range_fields_are_invalid(value: str) -> None:
    assert parse_http_date(value, NOW) is None


def test_leap_years() -> None:
    assert parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT") == datetime(2024, 2, 29, 12,
                                                                        tzinfo=UTC)
    assert parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT") == datetime(2000, 2, 29, 12,
                                                                        tzinfo=UTC)


def test_leap_second_is_read_as_the_second_before() -> None:
    # 5.6.7: time-of-day "00:00:00 - 23:59:60 (leap second)". Read as 23:59:59, the second a
    # POSIX clock shows during the leap second.
    assert parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT") == datetime(
        2016, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_http_date("Sat Dec 31 23:59:60 2016") == datetime(
        2016, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_extreme_years() -> None:
    assert parse_http_date("Mon, 01 Jan 0001 00:00:00 GMT") == datetime(1, 1, 1, tzinfo=UTC)
    assert parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT") == datetime(
        9999, 12, 31, 23, 59, 59, tzinfo=UTC)


# --- rfc850-date two-digit years (5.6.7) ----------------------------------------------------------


def test_rfc850_year_more_than_50_years_ahead_is_in_the_past_century() -> None:
    # 5.6.7: "MUST interpret a timestamp that appears to be more than 50 years in the future as
    # representing the most recent year in the past that had the same last two digits."
    fifty = NOW.replace(year=NOW.year + 50)
    assert parse_http_date(rfc850(fifty), NOW) == fifty  # exactly 50 years: not more
    later = fifty + timedelta(seconds=1)
    assert parse_http_date(rfc850(later.replace(year=later.year - 100)), NOW) == \
        later.replace(year=later.year - 100)
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", NOW) == EXAMPLE
    assert parse_http_date("Wednesday, 01-Jan-76 00:00:00 GMT", NOW) == datetime(
        2076, 1, 1, tzinfo=UTC)
    assert parse_http_date("Saturday, 01-Jan-77 00:00:00 GMT", NOW) == datetime(
        1977, 1, 1, tzinfo=UTC)
    assert parse_http_date("Saturday, 21-Nov-26 10:00:00 GMT", NOW) == datetime(
        2026, 11, 21, 10, tzinfo=UTC)


def test_rfc850_year_window_follows_now() -> None:
    # A 100-year window ending 50 years after now: in 2090, "10" is 2110, not 2010.
    in_2090 = datetime(2090, 6, 1, tzinfo=UTC)
    assert parse_http_date("Saturday, 01-Mar-10 00:00:00 GMT", in_2090) == datetime(
        2110, 3, 1, tzinfo=UTC)
    assert parse_http_date("Monday, 01-Mar-10 00:00:00 GMT", in_2090) is None  # 2010's weekday
    assert parse_http_date("Monday, 01-Mar-10 00:00:00 GMT", NOW) == datetime(
        2010, 3, 1, tzinfo=UTC)
    # The weekday is checked against the year the window gives.
    assert parse_http_date("Saturday, 01-Mar-10 00:00:00 GMT", NOW) is None


def test_rfc850_without_now_uses_the_clock() -> None:
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == EXAMPLE


def test_rfc850_near_the_end_of_the_calendar() -> None:
    assert parse_http_date("Friday, 31-Dec-99 23:59:59 GMT",
                           datetime(9990, 1, 1, tzinfo=UTC)) == datetime(
        9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    # Beyond year 9999: no datetime, so not a date.
    assert parse_http_date("Monday, 01-Jan-01 00:00:00 GMT",
                           datetime(9990, 1, 1, tzinfo=UTC)) is None


def test_naive_now_is_taken_as_utc() -> None:
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", datetime(2026, 1, 1)) == EXAMPLE


# --- never raises, constant work ------------------------------------------------------------------


@given(st.text(max_size=60))
def test_random_text_never_raises(value: str) -> None:
    parsed = parse_http_date(value, NOW)
    assert parsed is None or parsed.tzinfo is UTC


@given(st.integers(FIRST, LAST), st.sampled_from([imf, rfc850, asctime]),
       st.lists(st.tuples(st.integers(0, 40), st.characters(max_codepoint=0x2FF)), max_size=3))
def test_mutated_dates_never_raise(seconds: int, form: Callable[[datetime], str],
                                   edits: list[tuple[int, str]]) -> None:
    text = form(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds))
    for position, char in edits:
        text = text[:position] + char + text[position + 1:]
    parsed = parse_http_date(text, NOW)
    assert parsed is None or parsed.tzinfo is UTC


def test_non_text_is_not_a_date() -> None:
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT") is None  # type: ignore[arg-type]
    assert parse_http_date(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["," * 8192, '"' * 8192, " " * 8192, "Sun, " * 2000,
                                   "Sunday" + "x" * 100_000])
def test_hostile_lengths_are_rejected_at_once(value: str) -> None:
    started = time.perf_counter()
    for _ in range(100):
        assert parse_http_date(value, NOW) is None
    assert time.perf_counter() - started < 0.5


# --- IMF-fixdate output ---------------------------------------------------------------------------


def test_format_examples() -> None:
    assert format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(784111777.999) == "Sun, 06 Nov 1994 08:49:37 GMT"  # floor
    assert format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert format_http_date(-0.5) == "Wed, 31 Dec 1969 23:59:59 GMT"  # floor, not toward 0
    assert format_http_date(FIRST) == "Mon, 01 Jan 0001 00:00:00 GMT"
    assert format_http_date(LAST) == "Fri, 31 Dec 9999 23:59:59 GMT"


@pytest.mark.parametrize("timestamp", [math.nan, math.inf, -math.inf, FIRST - 1, LAST + 1,
                                       1e30, -1e30])
def test_format_rejects_what_has_no_http_date(timestamp: float) -> None:
    with pytest.raises(ValueError):
        format_http_date(timestamp)


@given(st.integers(FIRST, LAST))
def test_format_matches_the_standard_library_and_round_trips(seconds: int) -> None:
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    text = format_http_date(seconds)
    # 5.6.7: "the sender MUST generate those timestamps in the IMF-fixdate format".
    assert text == format_datetime(instant, usegmt=True) == imf(instant)
    assert parse_http_date(text, NOW) == instant


@given(st.floats(FIRST, LAST + 0.999, allow_nan=False))
def test_format_of_a_float_is_its_whole_second(timestamp: float) -> None:
    parsed = parse_http_date(format_http_date(timestamp), NOW)
    assert parsed is not None
    assert parsed.timestamp() == math.floor(timestamp)


@given(st.integers(FIRST, LAST))
def test_asctime_of_any_instant(seconds: int) -> None:
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    assert parse_http_date(asctime(instant), NOW) == instant


WINDOW_START = int(NOW.replace(year=NOW.year - 50).timestamp()) + 1
WINDOW_END = int(NOW.replace(year=NOW.year + 50).timestamp())


@given(st.integers(WINDOW_START, WINDOW_END))
def test_rfc850_inside_the_window(seconds: int) -> None:
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    assert parse_http_date(rfc850(instant), NOW) == instant


@given(st.one_of(st.integers(FIRST, WINDOW_START - 1), st.integers(WINDOW_END + 1, LAST)))
def test_rfc850_outside_the_window(seconds: int) -> None:
    # The two digits name a year inside the window; its weekday differs unless the two years
    # are a multiple of 400 apart (the Gregorian cycle), when it is that other date.
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    parsed = parse_http_date(rfc850(instant), NOW)
    if parsed is not None:
        assert (parsed.year - instant.year) % 400 == 0
        assert parsed.replace(year=instant.year) == instant
        assert WINDOW_START <= parsed.timestamp() <= WINDOW_END
