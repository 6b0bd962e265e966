"""An independent model of RFC 9110 ranges (14) and preconditions (13.2.2), written from the
RFC text with plain string handling and Python slicing, never from the package; with the
Hypothesis strategies that draw the request fields it judges."""

from __future__ import annotations

import sys

from hypothesis import strategies as st
from inprocess import Result
from support import parse_multipart

__all__ = ["DATE", "DATES", "LM", "TAG_FIELDS", "check", "expected", "if_range_header",
           "model_preconditions", "model_request", "range_header"]

LM = "Sat, 21 Nov 2026 10:00:00 GMT"
DATE = "Sat, 21 Nov 2026 11:00:00 GMT"
SEEKABLE = {"file_wrapper", "file_wrapper_cl", "raw_file", "bytesio"}
DIGITS = set("0123456789")


def model_specs(value: str) -> list[tuple[int | None, int | None]] | None:
    """RFC 9110 14.1.1 with 5.6.1.2 list rules; None means "ignore the header"."""
    if "=" not in value:
        return None
    unit, rest = value.split("=", 1)
    if unit.lower() != "bytes":
        return None
    specs: list[tuple[int | None, int | None]] = []
    for element in rest.split(","):
        element = element.strip(" \t")
        if not element:
            continue
        if element.count("-") != 1:
            return None
        first, last = element.split("-")
        if not set(first) <= DIGITS or not set(last) <= DIGITS or not (first or last):
            return None
        if first and last and int(last) < int(first):
            return None
        specs.append((int(first) if first else None, int(last) if last else None))
    return specs or None


def model_ranges(specs: list[tuple[int | None, int | None]], n: int) -> list[list[int]]:
    """Satisfiable ranges [start, stop, order], merged when overlapping or adjacent."""
    chosen = []
    for order, (first, last) in enumerate(specs):
        if first is None:
            if last:
                chosen.append([max(0, n - last), n, order])
        elif first < n:
            chosen.append([first, n if last is None else min(last + 1, n), order])
    merged: list[list[int]] = []
    for r in sorted(chosen):
        if merged and r[0] <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], r[1])
            merged[-1][2] = min(merged[-1][2], r[2])
        else:
            merged.append(list(r))
    return sorted(merged, key=lambda r: r[2])


def model_if_range(value: str, etag: str | None) -> bool:
    value = value.strip(" \t")
    if value.startswith('"'):
        return etag is not None and value == etag and not etag.startswith("W/")
    return value == LM  # the only Last-Modified used here is LM, with Date an hour later


def multipart_size(ranges: list[list[int]], n: int, content_type: str) -> int:
    head = len("--") + 32 + 2 + len(f"Content-Type: {content_type}\r\n") + 4
    size = len(f"\r\n--{'x' * 32}--\r\n") + 2 * (len(ranges) - 1)
    for start, stop, _ in ranges:
        size += head + len(f"Content-Range: bytes {start}-{stop - 1}/{n}") + stop - start
    return size


def expected(method: str, rng: str | None, if_range: str | None, etag: str | None,
             n: int, max_ranges: int) -> tuple[str, list[list[int]]]:
    if method != "GET" or rng is None or n == 0:
        return "full", []
    if if_range is not None and not model_if_range(if_range, etag):
        return "full", []
    specs = model_specs(rng)
    too_many_commas = rng.partition("=")[2].count(",") > 4 * max_ranges + 16
    if specs is None or len(specs) > max_ranges or too_many_commas:
        return "full", []
    ranges = model_ranges(specs, n)
    if not ranges:
        return "416", []
    if len(ranges) == 1:
        return "206", ranges
    if multipart_size(ranges, n, "application/x-test") > n + 4096:
        return "full", []
    return "multi", ranges


def model_request(method: str, rng: str | None, if_range: str | None, etag: str | None,
                  n: int, max_ranges: int) -> tuple[dict[str, str], str, list[list[int]]]:
    """The request fields to send, and the model's shape and ranges for them (with Python's
    limit on the digits of int() lifted: the model parses huge numerals too)."""
    request = {name: value for name, value in (("Range", rng), ("If-Range", if_range))
               if value is not None}
    old_limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        shape, ranges = expected(method, rng, if_range, etag, n, max_ranges)
    finally:
        sys.set_int_max_str_digits(old_limit)
    return request, shape, ranges


well_formed_spec = st.one_of(
    st.tuples(st.integers(0, 400), st.none() | st.integers(0, 400)).map(
        lambda t: f"{t[0]}-{'' if t[1] is None else t[1]}"),
    st.integers(0, 400).map(lambda n: f"-{n}"),
    st.just(""),
)
well_formed = st.builds(
    lambda unit, ows, specs, sep: f"{unit}={ows}{sep.join(specs)}",
    st.sampled_from(["bytes", "Bytes", "BYTES", "items"]),
    st.sampled_from(["", " ", "\t"]),
    st.lists(well_formed_spec, min_size=0, max_size=8),
    st.sampled_from([",", ", ", " , ", ",,", ",\t"]),
)
latin1 = st.text(st.characters(max_codepoint=255), max_size=40)
range_header = st.one_of(st.none(), well_formed, latin1, latin1.map(lambda s: "bytes=" + s),
                         st.integers(0, 5000).map(lambda n: f"bytes=0-{'9' * n}"))
if_range_header = st.one_of(st.none(), st.sampled_from(
    ['"v1"', '"v2"', 'W/"v1"', LM, "Sat, 21 Nov 2026 10:00:01 GMT", "garbage", ""]), latin1)


def check(result: Result, shape: str, ranges: list[list[int]], data: bytes, kind: str,
          method: str) -> None:
    n = len(data)
    if shape == "full":
        assert result.code == 200
        assert result.header("Accept-Ranges") == "bytes"
        assert result.header("Content-Length") == str(n)
        # The test app answers HEAD with a body too; 9.3.2: the middleware sends none.
        assert result.body == (data if method == "GET" else b"")
        assert result.header("Content-Range") is None
        return
    if shape == "416":
        assert result.status == "416 Range Not Satisfiable"
        assert result.header("Content-Range") == f"bytes */{n}"
        assert result.header("Content-Length") == str(len(result.body))
        return
    assert result.status == "206 Partial Content"
    assert result.header("Content-Length") == str(len(result.body))
    if shape == "206":
        start, stop, _ = ranges[0]
        assert result.header("Content-Range") == f"bytes {start}-{stop - 1}/{n}"
        assert result.header("Content-Type") == "application/x-test"
        assert result.body == data[start:stop]
        return
    assert result.header("Content-Range") is None
    content_type = result.header("Content-Type")
    assert content_type is not None and content_type.startswith("multipart/byteranges; ")
    order = ranges if kind in SEEKABLE else sorted(ranges)
    parts = parse_multipart(result.body, content_type)
    assert [(p[0]["content-range"], p[0]["content-type"], p[1]) for p in parts] == [
        (f"bytes {a}-{b - 1}/{n}", "application/x-test", data[a:b]) for a, b, _ in order]


# --- preconditions (RFC 9110 13.2.2) before ranges -----------------------------------------

DATES = {  # the field values drawn below, and the instant each names (None: not a date)
    LM: 0, "Sat, 21 Nov 2026 09:59:59 GMT": -1, "Sat, 21 Nov 2026 10:00:01 GMT": 1,
    "Sun, 22 Nov 2026 10:00:00 GMT": 86_400, "Saturday, 21-Nov-26 10:00:00 GMT": 0,
    "Sat Nov 21 10:00:00 2026": 0, "Sat, 21 Nov 2026 10:00:00 +0000": None,
    "Sun, 21 Nov 2026 10:00:00 GMT": None, "garbage": None, "": None,
}
DATE_OFFSET = 3600  # the response's Date is an hour after its Last-Modified
TAG_FIELDS = [None, "*", '"v1"', 'W/"v1"', '"v2"', '"v2", "v1"', '"v2",W/"v1"', ' , ', "",
              "garbage", '"v1" "v2"', '"v1']


def model_tags(value: str) -> str | list[tuple[bool, str]] | None:
    """``*``, the listed (weak, opaque) tags, or None for a value that is neither."""
    if value.strip() == "*":
        return "*"
    out = []
    for item in (x.strip() for x in value.split(",")):
        if not item:
            continue
        weak = item.startswith("W/")
        opaque = item[2:] if weak else item
        if len(opaque) < 2 or opaque[0] != '"' or opaque[-1] != '"' or '"' in opaque[1:-1] \
                or " " in opaque:
            return None
        out.append((weak, opaque))
    return out


def model_preconditions(fields: dict[str, str], etag: str | None) -> str:
    """13.2.2 steps 1-4, written from the RFC text: "412", "304" or "go"."""
    current = None if etag is None else (etag.startswith("W/"), etag.removeprefix("W/"))
    if "If-Match" in fields:
        tags = model_tags(fields["If-Match"])
        strong = tags == "*" or (isinstance(tags, list) and current is not None
                                 and not current[0]
                                 and any(not w and o == current[1] for w, o in tags))
        if not strong:
            return "412"
    elif "If-Unmodified-Since" in fields:
        when = DATES[fields["If-Unmodified-Since"]]
        if when is not None and when < 0:
            return "412"
    if "If-None-Match" in fields:
        tags = model_tags(fields["If-None-Match"])
        if tags == "*" or (isinstance(tags, list) and current is not None
                           and any(o == current[1] for _, o in tags)):
            return "304"
    elif "If-Modified-Since" in fields:
        when = DATES[fields["If-Modified-Since"]]
        if when is not None and 0 <= when <= DATE_OFFSET:
            return "304"
    return "go"
