"""HTTP-date (RFC 9110 5.6.7): a strict parser of its three formats and an IMF-fixdate writer.

Decisions where the RFC leaves room:

- Strict grammar: exact spacing, case-sensitive names, ``GMT`` only, no surrounding whitespace
  and nothing after the date. Callers strip the field's OWS first (5.5: a field value does not
  include leading or trailing whitespace).
- A weekday that is not the weekday of the date makes the value invalid.
- ``second`` 60 (5.6.7: "00:00:00 - 23:59:60 (leap second)") is accepted only as ``23:59:60``,
  where leap seconds are inserted, and read as ``23:59:59``: a POSIX clock shows that second
  again during a leap second, so a file stamped then has the same timestamp. Any other second
  60 is invalid.
- rfc850-date: the two-digit year becomes the latest year ending in those digits whose
  timestamp is not more than 50 years after ``now`` (5.6.7).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

__all__ = ["format_http_date", "parse_http_date"]

# Indexed like datetime.weekday() (Monday is 0) and datetime.month - 1.
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_NAMES_L = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY_INDEX = {name: index for index, name in enumerate(_DAY_NAMES)}
_DAY_L_INDEX = {name: index for index, name in enumerate(_DAY_NAMES_L)}
_MONTH_INDEX = {name: index + 1 for index, name in enumerate(_MONTHS)}
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Lengths of the fixed-width forms: "Sun, 06 Nov 1994 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
# and the part of an rfc850-date after its day-name-l: ", 06-Nov-94 08:49:37 GMT".
_IMF_LENGTH = 29
_ASCTIME_LENGTH = 24
_RFC850_TAIL = 24


def _digits(text: str) -> int:
    """The value of a run of ASCII digits (5.6.7 ``DIGIT``), or -1."""
    # str.isdigit alone accepts "²" and other non-ASCII digits.
    return int(text) if text.isascii() and text.isdigit() else -1


def _time_of_day(text: str) -> tuple[int, int, int] | None:
    """``hour ":" minute ":" second`` (5.6.7), checked against 00:00:00 - 23:59:60."""
    if text[2:3] != ":" or text[5:6] != ":" or len(text) != 8:
        return None
    hour, minute, second = _digits(text[0:2]), _digits(text[3:5]), _digits(text[6:8])
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 60):
        return None
    if second == 60:
        if hour != 23 or minute != 59:
            return None
        second = 59  # a leap second: see the module docstring
    return hour, minute, second


def _date(year: int, month: int, day: int, clock: tuple[int, int, int] | None,
          weekday: int) -> datetime | None:
    """The instant, if the calendar date exists and falls on ``weekday``."""
    if clock is None or not 1 <= year <= 9999 or day < 1:
        return None
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day > _DAYS_IN_MONTH[month - 1] + leap:
        return None
    instant = datetime(year, month, day, *clock, tzinfo=timezone.utc)
    return instant if instant.weekday() == weekday else None


def _imf_fixdate(value: str) -> datetime | None:
    """``day-name "," SP date1 SP time-of-day SP GMT`` (5.6.7)."""
    weekday = _DAY_INDEX.get(value[0:3], -1)
    month = _MONTH_INDEX.get(value[8:11], 0)
    if (weekday < 0 or not month or value[3:5] != ", " or value[7] != " " or value[11] != " "
            or value[16] != " " or value[25:] != " GMT"):
        return None
    return _date(_digits(value[12:16]), month, _digits(value[5:7]),
                 _time_of_day(value[17:25]), weekday)


def _asctime_date(value: str) -> datetime | None:
    """``day-name SP date3 SP time-of-day SP year``; date3 = month SP ( 2DIGIT / ( SP 1DIGIT ))."""
    weekday = _DAY_INDEX.get(value[0:3], -1)
    month = _MONTH_INDEX.get(value[4:7], 0)
    if (weekday < 0 or not month or value[3] != " " or value[7] != " " or value[10] != " "
            or value[19] != " "):
        return None
    day = _digits(value[9]) if value[8] == " " else _digits(value[8:10])
    return _date(_digits(value[20:24]), month, day, _time_of_day(value[11:19]), weekday)


def _rfc850_date(value: str, now: datetime | None) -> datetime | None:
    """``day-name-l "," SP date2 SP time-of-day SP GMT``; date2 = day "-" month "-" 2DIGIT."""
    tail = len(value) - _RFC850_TAIL
    weekday = _DAY_L_INDEX.get(value[:tail], -1)
    rest = value[tail:]
    month = _MONTH_INDEX.get(rest[5:8], 0)
    if (weekday < 0 or not month or rest[0:2] != ", " or rest[4] != "-" or rest[8] != "-"
            or rest[11] != " " or rest[20:] != " GMT"):
        return None
    day, two_digits, clock = _digits(rest[2:4]), _digits(rest[9:11]), _time_of_day(rest[12:20])
    if two_digits < 0 or clock is None:
        return None
    # 5.6.7: "MUST interpret a timestamp that appears to be more than 50 years in the future as
    # representing the most recent year in the past that had the same last two digits."
    ref = now if now is not None else datetime.now(timezone.utc)
    limit = (ref.year + 50, ref.month, ref.day, ref.hour, ref.minute, ref.second)
    year = ref.year - ref.year % 100 + two_digits + 100
    while (year, month, day, *clock) > limit:
        year -= 100
    return _date(year, month, day, clock, weekday)


def parse_http_date(value: str, now: datetime | None = None) -> datetime | None:
    """An aware UTC datetime for a valid HTTP-date (RFC 9110 5.6.7), else None; never raises.

    ``now`` (default: the clock) only places the two-digit year of an rfc850-date.
    """
    if not isinstance(value, str):
        return None
    # 5.6.7: "A recipient that parses a timestamp value in an HTTP field MUST accept all three
    # HTTP-date formats"; "HTTP-date is case sensitive". Each form has its own length.
    size = len(value)
    if size == _IMF_LENGTH:
        return _imf_fixdate(value)
    if size == _ASCTIME_LENGTH:
        return _asctime_date(value)
    if _RFC850_TAIL + 6 <= size <= _RFC850_TAIL + 9:  # "Monday" .. "Wednesday"
        return _rfc850_date(value, now)
    return None


def format_http_date(timestamp: float) -> str:
    """IMF-fixdate (RFC 9110 5.6.7) of a POSIX timestamp, rounded down to the whole second.

    Raises ValueError when the timestamp is not finite or outside the years 0001-9999.
    """
    try:
        instant = _EPOCH + timedelta(seconds=math.floor(timestamp))
    except (OverflowError, ValueError):
        raise ValueError(f"no HTTP-date for timestamp {timestamp!r}") from None
    # Built by hand: strftime("%a") and ("%b") follow the locale, HTTP-date does not.
    return (f"{_DAY_NAMES[instant.weekday()]}, {instant.day:02d} {_MONTHS[instant.month - 1]} "
            f"{instant.year:04d} {instant.hour:02d}:{instant.minute:02d}:{instant.second:02d} GMT")
