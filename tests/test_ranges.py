"""Range header parsing (RFC 9110 14.1.1, 5.6.1.2) and resolution (14.1.2)."""

from __future__ import annotations

import pytest

from rangewsgi.ranges import ByteRange, RangeSpec, TooManyRanges, parse_range, resolve


def parse(value: str, max_ranges: int = 100) -> list[RangeSpec] | None:
    return parse_range(value, max_ranges)


@pytest.mark.parametrize(("value", "expected"), [
    ("bytes=0-499", [(0, 499)]),
    ("bytes=500-", [(500, None)]),
    ("bytes=-500", [(None, 500)]),
    ("bytes=0-0,-1", [(0, 0), (None, 1)]),
    # 14.1: "All range unit names are case-insensitive".
    ("Bytes=1-2", [(1, 2)]),
    ("BYTES=1-2", [(1, 2)]),
    # 14.1.2 example "bytes= 0-999, 4500-5499, -1000": OWS after "=" and around commas.
    ("bytes= 0-999, 4500-5499, -1000", [(0, 999), (4500, 5499), (None, 1000)]),
    ("bytes=0-1 ,\t2-3", [(0, 1), (2, 3)]),
    # 5.6.1.2: empty list elements are parsed and ignored.
    ("bytes=0-1,,2-3", [(0, 1), (2, 3)]),
    ("bytes=,0-1", [(0, 1)]),
    ("bytes=0-1,", [(0, 1)]),
    ("bytes=, ,0-1, ,", [(0, 1)]),
    ("bytes=007-010", [(7, 10)]),
])
def test_valid_range_headers(value: str, expected: list[tuple[int | None, int | None]]) -> None:
    assert parse(value) == [RangeSpec(*e) for e in expected]


@pytest.mark.parametrize("value", [
    "", "bytes", "bytes=", "bytes=,", "bytes= , ", "bytes=-", "bytes=--5", "bytes=0-1-2",
    "bytes=5-4",  # 14.1.1: last-pos < first-pos makes the whole specifier invalid
    "bytes=0-1,5-4", "bytes=+5-9", "bytes=1_0-20", "bytes=\xb2-3", "bytes=0x10-20",
    "bytes=0 - 1", "bytes 0-1", "bytes =0-1", "bytes=a-b", "bytes=1.5-2", "bytes=-1-",
    "bytes=\uff10-1", "bytes=0-1;x", "bytes=0-1\r\n", "bytes=\x000-1",
    # 14.2: an unknown unit MUST be ignored.
    "items=0-5", "none=0-1", "bytesx=0-1", "=0-1",
])
def test_invalid_or_foreign_headers_are_ignored(value: str) -> None:
    assert parse(value) is None


def test_huge_numbers_never_crash() -> None:
    # 14.1.2: "recipients MUST anticipate potentially large decimal numerals"; int() fails past
    # 4300 digits, so positions are clamped instead.
    big = "9" * 5000
    specs = parse(f"bytes={big}-,0-{big},-{big}")
    assert specs is not None and len(specs) == 3
    assert resolve(specs[:1], 100) == []
    assert resolve(specs[1:2], 100) == [ByteRange(0, 100, 0)]
    assert resolve(specs[2:], 100) == [ByteRange(0, 100, 0)]


def test_huge_numbers_compare_exactly() -> None:
    # last-pos < first-pos is detected even when both exceed any clampable size.
    a, b = "1" + "0" * 40, "9" * 40
    assert parse(f"bytes={a}-{b}") is None
    assert parse(f"bytes={b}-{a}") is not None
    assert parse("bytes=0010-9") is None


def test_too_many_ranges_stop_parsing_early() -> None:
    # 17.15: "ignore, coalesce, or reject egregious range requests".
    with pytest.raises(TooManyRanges):
        parse("bytes=" + ",".join(["0-1"] * 11), max_ranges=10)
    # A header with too many list elements is refused before it is validated.
    with pytest.raises(TooManyRanges):
        parse("bytes=" + ",".join(["0-1"] * 100) + ",garbage", max_ranges=10)
    assert parse("bytes=" + ",".join(["0-1"] * 10), max_ranges=10) is not None
    # Empty elements do not count against the limit.
    assert parse("bytes=" + ",,".join(["0-1"] * 10) + ",,,", max_ranges=10) is not None


@pytest.mark.parametrize(("specs", "length", "expected"), [
    ([(0, 0)], 10, [(0, 1)]),
    ([(None, 1)], 10, [(9, 10)]),
    ([(None, 0)], 10, []),  # 14.1.2: a suffix-range is satisfiable only if non-zero
    ([(10, None)], 10, []),  # first-pos >= length: unsatisfiable
    ([(10, 20)], 10, []),
    ([(5, 100)], 10, [(5, 10)]),  # last-pos clamped to length - 1
    ([(None, 100)], 10, [(0, 10)]),  # "the entire representation is used"
    ([(3, None)], 10, [(3, 10)]),
    ([(None, 5)], 0, []),
    ([(0, None)], 0, []),
])
def test_satisfiability(specs: list[tuple[int | None, int | None]], length: int,
                        expected: list[tuple[int, int]]) -> None:
    got = resolve([RangeSpec(*s) for s in specs], length)
    assert [(r.start, r.stop) for r in got] == expected


def test_unsatisfiable_members_are_dropped_not_fatal() -> None:
    got = resolve([RangeSpec(50, 60), RangeSpec(0, 1), RangeSpec(None, 0)], 10)
    assert [(r.start, r.stop) for r in got] == [(0, 2)]


def test_overlapping_and_adjacent_ranges_merge_in_request_order() -> None:
    # 15.3.7.2 MAY coalesce; merged ranges keep the position of their earliest member.
    specs = [RangeSpec(*s) for s in [(50, 59), (0, 9), (10, 19), (55, 70), (90, 95), (5, 12)]]
    got = resolve(specs, 100)
    assert [(r.start, r.stop, r.order) for r in got] == [(50, 71, 0), (0, 20, 1), (90, 96, 4)]


def test_ranges_separated_by_a_gap_stay_apart() -> None:
    got = resolve([RangeSpec(0, 9), RangeSpec(11, 20)], 100)
    assert [(r.start, r.stop) for r in got] == [(0, 10), (11, 21)]


def test_ninety_nine_full_ranges_coalesce_to_one() -> None:
    specs = parse("bytes=" + ",".join(["0-"] * 99))
    assert specs is not None
    assert resolve(specs, 1000) == [ByteRange(0, 1000, 0)]


def test_a_flood_of_empty_elements_is_refused_without_splitting() -> None:
    # 5.6.1.2: only "a reasonable number of empty list elements" must be accepted.
    with pytest.raises(TooManyRanges):
        parse("bytes=0-1" + "," * 100_000, max_ranges=10)
    assert parse("bytes=" + ", ,".join(["0-1"] * 10), max_ranges=10) is not None
