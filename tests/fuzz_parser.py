"""Coverage-guided fuzzing of the Range and If-Range parsers and the decision (atheris).

Run it for as long as you like (libFuzzer options apply)::

    python tests/fuzz_parser.py -max_total_time=600
    python tests/fuzz_parser.py -max_total_time=600 corpus_dir/   # keep the corpus

The test suite runs it for about 20 seconds (``test_fuzz.py::test_coverage_guided_parser``).
Each input is split into a representation length, a Range value and an If-Range value
(latin-1, as a WSGI server hands header values over). For every input the harness checks
the invariants RFC 9110 asks for; any exception other than the documented ``TooManyRanges``
is a crash that libFuzzer reports with the input that caused it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from rangewsgi.conditions import if_range_holds
    from rangewsgi.multipart import Framing, content_range
    from rangewsgi.plan import Kind, Limits, plan, read_headers
    from rangewsgi.ranges import TooManyRanges, parse_range, resolve

LIMITS = Limits()
CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)")  # RFC 9110 14.4
HEADERS = [("Content-Type", "video/mp4"), ("ETag", '"v1"'),
           ("Last-Modified", "Sun, 13 Sep 2020 12:26:40 GMT"),
           ("Date", "Sun, 13 Sep 2020 12:27:40 GMT")]

# Tokens that help libFuzzer build valid headers early.
DICTIONARY = ['"bytes"', '"="', '"-"', '","', '" "', '"\\x09"', '"0"', '"9"',
              '"\\x22v1\\x22"', '"W/"', '"Sun, 13 Sep 2020 12:26:40 GMT"', '"GMT"']


def check_ranges(value: str, length: int) -> None:
    try:
        specs = parse_range(value, LIMITS.max_ranges)
    except TooManyRanges:
        return
    if specs is None:
        return
    assert 1 <= len(specs) <= LIMITS.max_ranges
    ranges = resolve(specs, length)
    previous_stop = -1
    for r in sorted(ranges):
        # 14.1.2: satisfiable ranges lie inside the representation.
        assert 0 <= r.start < r.stop <= length, (value, length, r)
        # Coalesced: neither overlapping nor adjacent (15.3.7.2 MAY coalesce, done always).
        assert r.start > previous_stop, (value, length, ranges)
        previous_stop = r.stop
        match = CONTENT_RANGE.fullmatch(content_range(r, length))
        assert match is not None
        first, last, complete = (int(g) for g in match.groups())
        assert first <= last < complete == length  # 14.4: never "bytes 5-4/5"
    orders = [r.order for r in ranges]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    if len(ranges) > 1:
        framing = Framing(ranges, length, "video/mp4")
        expected = sum(len(h) for h in framing.heads) + len(framing.tail) + sum(
            r.stop - r.start for r in ranges)
        assert framing.content_length == expected


def check_plan(range_value: str, if_range: str | None, length: int) -> None:
    headers = [*HEADERS, ("Content-Length", str(length))]
    facts = read_headers("200 OK", headers)
    assert facts is not None
    decided = plan(range_value, if_range, "200 OK", headers, facts, length, LIMITS)
    for name, value in decided.headers:
        # 5.5: nothing from the request may put CR, LF or NUL into a response header.
        assert not re.search(r"[\r\n\x00]", name + value), (name, value)
    if decided.kind is Kind.MULTIPART:
        assert decided.framing is not None
        assert decided.framing.content_length <= length + LIMITS.max_multipart_excess
    if decided.kind is Kind.UNSATISFIABLE:
        assert ("Content-Range", f"bytes */{length}") in decided.headers


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    length = fdp.ConsumeIntInRange(0, 1 << 40)
    if fdp.ConsumeBool():
        length = fdp.ConsumeIntInRange(0, 300)
    if_range = None
    if fdp.ConsumeBool():
        if_range = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64)).decode("latin-1")
        # A result is enough: its truth depends on the clock for date forms.
        assert isinstance(if_range_holds(if_range, '"v1"', HEADERS[2][1], HEADERS[3][1]), bool)
    range_value = fdp.ConsumeBytes(fdp.remaining_bytes()).decode("latin-1")
    check_ranges(range_value, length)
    check_plan(range_value, if_range, length)


def main(argv: list[str]) -> None:
    args = list(argv)
    if not any(a.startswith("-dict=") for a in args):
        handle = tempfile.NamedTemporaryFile("w", suffix=".dict", delete=False)  # noqa: SIM115
        handle.write("\n".join(DICTIONARY) + "\n")
        handle.close()
        args.append(f"-dict={handle.name}")
    atheris.Setup(args, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        if not any(a.startswith("-dict=") for a in argv):
            os.unlink(handle.name)


if __name__ == "__main__":
    main(sys.argv)
