"""Preconditions (RFC 9110): If-Range, entity-tags, the 13.2.2 order, file validators."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rangewsgi.conditions import (
    EntityTag,
    Precondition,
    evaluate_preconditions,
    file_validators,
    if_range_holds,
    parse_entity_tag,
    parse_entity_tag_list,
    strong_match,
    weak_match,
)
from rangewsgi.httpdate import format_http_date, parse_http_date

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


@pytest.mark.parametrize("if_range", [
    "Sat, 21 Nov 2026 10:00:00 GMT garbage",  # 5.6.7: nothing after the date
    "Sat, 21 Nov 2026 10:00:00 +0000",  # 5.6.7: GMT only
    "Sat, 21 Nov 2026 10:00:00 UTC",
    "Sun, 21 Nov 2026 10:00:00 GMT",  # wrong weekday
    "sat, 21 Nov 2026 10:00:00 GMT",  # 5.6.7: "HTTP-date is case sensitive"
    "Sat, 21 nov 2026 10:00:00 GMT",
    "Sat,  21 Nov 2026 10:00:00 GMT",
    "Sat, 21 Nov 2026 10:00:00 GMT, Sat, 21 Nov 2026 10:00:00 GMT",
    "2026-11-21T10:00:00Z",
])
def test_date_form_is_a_strict_http_date(if_range: str) -> None:
    # 13.1.5: true only if the HTTP-date "exactly matches the Last-Modified field value"; a
    # value that only resembles it is not an HTTP-date (5.6.7).
    assert if_range_holds(if_range, None, LM, LATER, NOW) is False


def test_date_form_in_the_obsolete_formats() -> None:
    # 5.6.7: "A recipient ... MUST accept all three HTTP-date formats".
    assert if_range_holds("Sat Nov 21 10:00:00 2026", None, LM, LATER, NOW)
    assert if_range_holds(LM, None, "Sat Nov 21 10:00:00 2026", LATER, NOW)
    assert if_range_holds(LM, None, LM, "Saturday, 21-Nov-26 10:00:01 GMT", NOW)


def test_response_validators_are_parsed_strictly() -> None:
    # A Last-Modified that is not an HTTP-date is no modification date.
    assert not if_range_holds(LM, None, "Sun, 21 Nov 2026 10:00:00 GMT", LATER, NOW)
    assert not if_range_holds(LM, None, "Sat, 21 Nov 2026 10:00:00 +0000", LATER, NOW)
    # A Date that is not an HTTP-date: the current time stands in for it.
    assert if_range_holds(LM, None, LM, "garbage", NOW)
    assert not if_range_holds(LM, None, LM, "garbage",
                              datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=timezone.utc))


# --- entity-tags (8.8.3) and their lists (13.1.1, 13.1.2, 5.6.1.2) ----------------------------


@pytest.mark.parametrize(("value", "tag"), [
    ('"xyzzy"', EntityTag(False, '"xyzzy"')),  # 8.8.3 examples
    ('W/"xyzzy"', EntityTag(True, '"xyzzy"')),
    ('""', EntityTag(False, '""')),
    (' \t"a"\t ', EntityTag(False, '"a"')),  # the field's OWS
    ('"a,b"', EntityTag(False, '"a,b"')),  # etagc includes ","
    ('"\x21\x23\x7e\x80\xff"', EntityTag(False, '"\x21\x23\x7e\x80\xff"')),  # obs-text
    ('"W/"', EntityTag(False, '"W/"')),
    ('"a', None), ('a"', None), ('"', None), ("", None), ("xyzzy", None),
    ('w/"a"', None),  # 8.8.3: weak = %s"W/", case-sensitive
    ('W/ "a"', None), ('W/W/"a"', None), ("W/", None),
    ('"a b"', None), ('"a\tb"', None), ('"a"b"', None),  # SP, HTAB, DQUOTE are not etagc
    ('"\x00"', None), ('"\x7f"', None), ('"\u0100"', None),
    ('"a", "b"', None),  # one tag, not a list
    ("*", None),
])
def test_parse_entity_tag(value: str, tag: EntityTag | None) -> None:
    assert parse_entity_tag(value) == tag


S, W = False, True


@pytest.mark.parametrize(("value", "parsed"), [
    ("*", "*"),
    (" * ", "*"),
    ('"xyzzy"', ((S, '"xyzzy"'),)),  # 13.1.1 / 13.1.2 examples
    ('"xyzzy", "r2d2xxxx", "c3piozzzz"',
     ((S, '"xyzzy"'), (S, '"r2d2xxxx"'), (S, '"c3piozzzz"'))),
    ('W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"',
     ((W, '"xyzzy"'), (W, '"r2d2xxxx"'), (W, '"c3piozzzz"'))),
    ('"a",W/"b"', ((S, '"a"'), (W, '"b"'))),
    # 5.6.1.2: "#element => [ element ] *( OWS "," OWS [ element ] )"
    ('"a" , "b"', ((S, '"a"'), (S, '"b"'))),
    ('"a",,"b"', ((S, '"a"'), (S, '"b"'))),
    (',"a"', ((S, '"a"'),)),
    ('"a",', ((S, '"a"'),)),
    ('\t, ,"a" ,\t, W/"b", ,', ((S, '"a"'), (W, '"b"'))),
    ('"a,b", "c"', ((S, '"a,b"'), (S, '"c"'))),  # a comma inside an opaque-tag
    ('"", W/""', ((S, '""'), (W, '""'))),
    ("", ()),  # #entity-tag allows an empty list
    (" , ,, ", ()),
])
def test_parse_entity_tag_list(value: str, parsed: str | tuple[tuple[bool, str], ...]) -> None:
    expected = parsed if parsed == "*" else tuple(EntityTag(*item) for item in parsed)
    assert parse_entity_tag_list(value) == expected


@pytest.mark.parametrize("value", [
    '*, "a"', '"a", *', "*, *", "**", "* ,",  # 13.1.1: "*" with other values is invalid
    '"a" "b"', '"a""b"', '"a"W/"b"',  # elements need a comma between them
    "a", '"a", b', 'W/"a", w/"b"', 'W/ "a"', '"a" W/',
    '"a', '"a", "b', '"a"b"',
    '"a b"', '"a", "b\tc"',
    '"a"\x00', '"\x7f"', '"\u0100"', "\r\n",
    "W/", 'W/,"a"', 'W/W/"a"',
])
def test_invalid_entity_tag_lists(value: str) -> None:
    assert parse_entity_tag_list(value) is None


@pytest.mark.parametrize(("a", "b", "strong", "weak"), [
    # 8.8.3.2, Table 3
    ('W/"1"', 'W/"1"', False, True),
    ('W/"1"', 'W/"2"', False, False),
    ('W/"1"', '"1"', False, True),
    ('"1"', '"1"', True, True),
    ('"1"', '"2"', False, False),
])
def test_comparison_functions(a: str, b: str, strong: bool, weak: bool) -> None:
    tag_a, tag_b = parse_entity_tag(a), parse_entity_tag(b)
    assert tag_a is not None and tag_b is not None
    assert strong_match(tag_a, tag_b) is strong and strong_match(tag_b, tag_a) is strong
    assert weak_match(tag_a, tag_b) is weak and weak_match(tag_b, tag_a) is weak


# --- 13.2.2 steps 1-4 ---------------------------------------------------------------------------

P, N, F = Precondition.PROCEED, Precondition.NOT_MODIFIED, Precondition.FAILED
EARLIER = "Sat, 21 Nov 2026 09:59:59 GMT"
FUTURE = "Sat, 21 Nov 2026 12:00:01 GMT"  # after NOW


def evaluate(if_match: str | None = None, ius: str | None = None, inm: str | None = None,
             ims: str | None = None, etag: str | None = '"v1"', lm: str | None = LM,
             date: str | None = None) -> Precondition:
    return evaluate_preconditions(if_match, ius, inm, ims, etag, lm, date, NOW)


def test_no_preconditions_proceed() -> None:
    assert evaluate() is P
    assert evaluate(etag=None, lm=None) is P


@pytest.mark.parametrize(("if_match", "etag", "outcome"), [
    ('"v1"', '"v1"', P),
    ('"v0", "v1"', '"v1"', P),
    ('"v0"', '"v1"', F),  # 13.1.1: false -> 412
    ('W/"v1"', '"v1"', F),  # 13.1.1: "MUST use the strong comparison function"
    ('"v1"', 'W/"v1"', F),
    ('W/"v1"', 'W/"v1"', F),
    ("*", '"v1"', P),  # 13.1.1: "*" is true if there is a current representation
    ("*", None, P),  # a 200 always has one
    ("*", "garbage", P),
    ('"v1"', None, F),  # no entity tag: no member can match
    ('"v1"', "garbage", F),  # an invalid ETag is no entity tag
    ("", '"v1"', F),  # an empty list matches nothing
    ('"v1", garbage', '"v1"', F),  # 13.1.1 "Otherwise, the condition is false"
    ('*, "v1"', '"v1"', F),
])
def test_step_1_if_match(if_match: str, etag: str | None, outcome: Precondition) -> None:
    assert evaluate(if_match=if_match, etag=etag) is outcome


def test_step_1_if_match_overrides_if_unmodified_since() -> None:
    # 13.1.4: "A recipient MUST ignore If-Unmodified-Since if the request contains an If-Match
    # header field", even one that is not a valid list.
    assert evaluate(if_match='"v1"', ius=EARLIER) is P
    assert evaluate(if_match="garbage", ius=LM) is F
    assert evaluate(if_match='"v0"', ius=LATER) is F


@pytest.mark.parametrize(("ius", "lm", "outcome"), [
    (LM, LM, P),  # 13.1.4: true if "earlier than or equal to the date provided"
    (LATER, LM, P),
    (EARLIER, LM, F),  # false -> 412
    ("Saturday, 21-Nov-26 09:59:59 GMT", LM, F),  # any of the three formats
    ("Sat Nov 21 09:59:59 2026", LM, F),
    (EARLIER, None, P),  # 13.1.4: ignored "if the resource does not have a modification date"
    (EARLIER, "garbage", P),
    (EARLIER, "Sun, 21 Nov 2026 10:00:00 GMT", P),  # a wrong weekday is no date
    ("garbage", LM, P),  # 13.1.4: ignored if "not a valid HTTP-date"
    ("Sat, 21 Nov 2026 09:59:59 +0000", LM, P),
    ("Sun, 21 Nov 2026 09:59:59 GMT", LM, P),
    (f"{EARLIER}, {EARLIER}", LM, P),  # "including when the field value appears to be a list"
    (f" {EARLIER}\t", LM, F),  # OWS around the field value
])
def test_step_2_if_unmodified_since(ius: str, lm: str | None, outcome: Precondition) -> None:
    assert evaluate(ius=ius, lm=lm) is outcome


@pytest.mark.parametrize(("inm", "etag", "outcome"), [
    ('"v1"', '"v1"', N),  # 13.1.2: false -> 304 for GET/HEAD
    ('W/"v1"', '"v1"', N),  # 13.1.2: "MUST use the weak comparison function"
    ('"v1"', 'W/"v1"', N),
    ('W/"v1"', 'W/"v1"', N),
    ('"v0", W/"v1"', '"v1"', N),
    ('"v0"', '"v1"', P),
    ('"V1"', '"v1"', P),  # character-by-character
    ("*", '"v1"', N),  # 13.1.2: "*" is false if there is a current representation
    ("*", None, N),
    ('"v1"', None, P),  # no entity tag: nothing matches
    ('"v1"', "garbage", P),
    ("", '"v1"', P),
    ('"v1", garbage', '"v1"', P),  # 13.1.2 "Otherwise, the condition is true"
    ('"v1" "v1"', '"v1"', P),
])
def test_step_3_if_none_match(inm: str, etag: str | None, outcome: Precondition) -> None:
    assert evaluate(inm=inm, etag=etag) is outcome


def test_step_3_follows_steps_1_and_2() -> None:
    assert evaluate(if_match='"v0"', inm='"v1"') is F  # 412 before 304
    assert evaluate(ius=EARLIER, inm='"v1"') is F
    assert evaluate(if_match='"v1"', inm='"v1"') is N
    assert evaluate(ius=LM, inm='"v1"') is N


@pytest.mark.parametrize(("ims", "lm", "date", "outcome"), [
    (LM, LM, None, N),  # 13.1.3: false if "earlier or equal to the date provided" -> 304
    (LATER, LM, None, N),
    (EARLIER, LM, None, P),
    ("Saturday, 21-Nov-26 10:00:00 GMT", LM, None, N),
    ("Sat Nov 21 10:00:00 2026", LM, None, N),
    (LM, None, None, P),  # 13.1.3: ignored without "a modification date available"
    (LM, "garbage", None, P),
    ("garbage", LM, None, P),  # 13.1.3: ignored if "not a valid HTTP-date"
    (LM + " ", LM, None, N),  # the field's OWS
    (LM + "x", LM, None, P),
    ("Sun, 21 Nov 2026 10:00:00 GMT", LM, None, P),  # wrong weekday
    ("Sat, 21 Nov 2026 10:00:00 +0000", LM, None, P),
    (f"{LM}, {LM}", LM, None, P),  # 13.1.3: ignored if it "has more than one member"
    # Later than the server's current time (the response's Date, else now): ignored.
    (FUTURE, LM, None, P),
    ("Sat, 21 Nov 2026 12:00:00 GMT", LM, None, N),  # exactly now
    (LATER, LM, LM, P),  # after the Date
    (LATER, LM, LATER, N),
    (LATER, LM, "garbage", N),  # no valid Date: now
    (FUTURE, LM, "Sat, 21 Nov 2026 13:00:00 GMT", N),
])
def test_step_4_if_modified_since(ims: str, lm: str | None, date: str | None,
                                  outcome: Precondition) -> None:
    assert evaluate(ims=ims, lm=lm, date=date) is outcome


def test_step_4_only_without_if_none_match() -> None:
    # 13.1.3: "A recipient MUST ignore If-Modified-Since if the request contains an
    # If-None-Match header field", whatever its value.
    assert evaluate(inm='"v0"', ims=LM) is P
    assert evaluate(inm="garbage", ims=LM) is P
    assert evaluate(inm="", ims=LM) is P
    assert evaluate(inm='"v1"', ims=EARLIER) is N


def test_steps_1_and_2_before_step_4() -> None:
    assert evaluate(if_match='"v0"', ims=LM) is F
    assert evaluate(ius=EARLIER, ims=LM) is F
    assert evaluate(if_match="*", ims=LM) is N


def test_without_now_the_clock_is_used() -> None:
    # Long after LM: the If-Modified-Since equal to Last-Modified is in the past.
    assert evaluate_preconditions(None, None, None, LM, None, LM, None) is N
    assert evaluate_preconditions(None, None, None, "Fri, 31 Dec 9999 23:59:59 GMT", None,
                                  LM, None) is P
    assert evaluate_preconditions(None, None, None, LM, None, LM, None,
                                  datetime(2026, 11, 21, 12, 0)) is N  # naive: UTC


# --- file validators ---------------------------------------------------------------------------

MTIME_NS = 1_795_000_000_123_456_789  # 2026-11-18T11:06:40.123456789Z


def test_file_validators() -> None:
    etag, last_modified = file_validators(1234, MTIME_NS, NOW)
    tag = parse_entity_tag(etag)
    assert tag is not None and not tag.weak  # 8.8.3: strong
    assert last_modified == format_http_date(1_795_000_000)  # whole seconds, floor
    assert last_modified == formatdate(1_795_000_000, usegmt=True)
    # Only size and mtime: the same on every call and every machine.
    assert file_validators(1234, MTIME_NS, NOW) == (etag, last_modified)
    assert etag == '"18e91efd632f4d15-4d2"'


def test_file_etag_changes_with_size_and_nanoseconds() -> None:
    tags = {file_validators(size, mtime, NOW)[0]
            for size in (0, 1, 1234) for mtime in (MTIME_NS, MTIME_NS + 1, 0, -1)}
    assert len(tags) == 12
    assert all(parse_entity_tag(tag) is not None for tag in tags)


def test_file_last_modified_before_1970_rounds_down() -> None:
    assert file_validators(1, -1, NOW)[1] == "Wed, 31 Dec 1969 23:59:59 GMT"


def test_file_last_modified_in_the_future_is_now() -> None:
    # 8.8.2.1: metadata "that evaluates to some time in the future ... MUST replace that value
    # with the message origination date".
    future_ns = int(NOW.timestamp()) * 1_000_000_000 + 10**12
    etag, last_modified = file_validators(5, future_ns, NOW)
    assert last_modified == "Sat, 21 Nov 2026 12:00:00 GMT"
    assert etag == file_validators(5, future_ns, NOW.replace(year=2100))[0]
    # Without ``now``, the clock.
    year_2200_ns = 7_258_118_400 * 1_000_000_000
    before = datetime.now(timezone.utc).replace(microsecond=0)
    modified = parse_http_date(file_validators(5, year_2200_ns)[1])
    assert modified is not None and before <= modified <= datetime.now(timezone.utc)


# --- hostile input: linear time -----------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "," * 65536, '"' * 65536, '"' * 65535, " " * 65536, "W/" * 32768, 'W/"a",' * 10000,
    '"a' + "b" * 65536, '"a",' * 16384, '"",' * 20000 + "x", ", " * 32768 + '"a"',
    "\t" * 65536, "*" * 65536, '"' + "," * 65536 + '"',
])
def test_hostile_values_take_linear_time(value: str) -> None:
    started = time.perf_counter()
    parse_entity_tag_list(value)
    parse_entity_tag(value)
    if_range_holds(value, '"a"', LM, LATER, NOW)
    evaluate_preconditions(value, value, value, value, value, value, value, NOW)
    evaluate_preconditions(None, None, value, None, '"a"', LM, None, NOW)
    assert time.perf_counter() - started < 0.5


# --- properties ---------------------------------------------------------------------------------

# 8.8.3: etagc = %x21 / %x23-7E / obs-text, i.e. latin-1 without CTLs, SP, DQUOTE and DEL.
ETAGC = st.characters(codec="latin-1",
                      exclude_characters="".join(map(chr, range(0x21))) + '"\x7f')
T = TypeVar("T")


def mostly(often: st.SearchStrategy[T], rarely: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``often`` about four times in five, so that matches and failures are both common."""
    return st.sampled_from((True, True, True, True, False)).flatmap(
        lambda usual: often if usual else rarely)


INNER = mostly(st.sampled_from(["a", "b"]),
               st.one_of(st.sampled_from(["", "\xe9"]), st.text(ETAGC, max_size=4)))
GARBAGE_MEMBERS = ["abc", 'w/"x"', '"a b"', '"x"y', 'W/ "x"', '"\x7f"', '"\u0100"', "W/",
                   '""""', "a=b"]
SEPARATORS = [",", ", ", " ,", ",,", " , ,\t"]


@dataclass(frozen=True)
class Member:
    """One drawn list member: an entity-tag, or text that is not one."""

    weak: bool = False
    inner: str = ""
    garbage: str | None = None

    def render(self) -> str:
        if self.garbage is not None:
            return self.garbage
        return ('W/"' if self.weak else '"') + self.inner + '"'


@dataclass(frozen=True)
class TagField:
    """A drawn If-Match / If-None-Match value and what it means."""

    text: str
    star: bool = False
    members: tuple[Member, ...] = ()

    @property
    def valid(self) -> bool:
        return self.star or all(m.garbage is None for m in self.members)


MEMBER = mostly(st.builds(Member, st.booleans(), INNER),
                st.builds(Member, garbage=st.sampled_from(GARBAGE_MEMBERS)))


@st.composite
def tag_fields(draw: st.DrawFn) -> TagField:
    if draw(st.integers(0, 5)) == 0:
        return TagField(draw(st.sampled_from(["*", " *", "*\t "])), star=True)
    members = tuple(draw(mostly(st.lists(MEMBER, min_size=1, max_size=3), st.just([]))))
    text = draw(st.sampled_from(["", ",", " , ", "\t"]))
    for index, member in enumerate(members):
        if index:
            text += draw(st.sampled_from(SEPARATORS))
        text += member.render()
    text += draw(st.sampled_from(["", ",", " ,, ", " "]))
    return TagField(text, members=members)


@given(tag_fields())
def test_rendered_lists_parse_back(field: TagField) -> None:
    parsed = parse_entity_tag_list(field.text)
    if field.star:
        assert parsed == "*"
    elif not field.valid:
        assert parsed is None
    else:
        assert parsed == tuple(EntityTag(m.weak, f'"{m.inner}"') for m in field.members)


@given(st.text(max_size=40))
def test_entity_tag_parsers_never_raise(value: str) -> None:
    parsed = parse_entity_tag_list(value)
    assert parsed is None or parsed == "*" or isinstance(parsed, tuple)
    tag = parse_entity_tag(value)
    assert tag is None or parse_entity_tag_list(value) == (tag,)


BASE = datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc)
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_NAMES_L = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def render_date(t: datetime, form: str, day_shift: int = 0) -> str:
    """``t`` in one of the three 5.6.7 formats; ``day_shift`` names a wrong weekday."""
    weekday = (t.weekday() + day_shift) % 7
    short, full = DAY_NAMES[weekday], DAY_NAMES_L[weekday]
    hms = f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    month = MONTHS[t.month - 1]
    if form == "imf":
        return f"{short}, {t.day:02d} {month} {t.year:04d} {hms} GMT"
    if form == "rfc850":
        return f"{full}, {t.day:02d}-{month}-{t.year % 100:02d} {hms} GMT"
    return f"{short} {month} {t.day:2d} {hms} {t.year:04d}"


@dataclass(frozen=True)
class DateField:
    """A drawn date field value and the instant it means (None: not an HTTP-date)."""

    text: str
    instant: datetime | None


@st.composite
def date_fields(draw: st.DrawFn, offsets: list[int]) -> DateField:
    instant = BASE + timedelta(seconds=draw(st.sampled_from(offsets)))
    form = draw(st.sampled_from(["imf", "rfc850", "asctime"]))
    spoil = draw(mostly(st.just(""), st.sampled_from(["weekday", "trailing", "zone", "case",
                                                      "list", "ows"])))
    text = render_date(instant, form)
    if spoil == "weekday":
        return DateField(render_date(instant, form, draw(st.integers(1, 6))), None)
    if spoil == "trailing":
        return DateField(text + draw(st.sampled_from(["x", " GMT", ";", " +0000"])), None)
    if spoil == "zone":
        return DateField(text.replace("GMT", "+0000") if "GMT" in text else text + " GMT",
                         None)
    if spoil == "case":
        return DateField(text.upper(), None)
    if spoil == "list":
        return DateField(f"{text}, {text}", None)
    if spoil == "ows":
        return DateField(f" {text}\t", instant)
    return DateField(text, instant)


AROUND = [-86400, -2, -1, 0, 1, 2, 3600, 7199, 7200, 7201, 86400, 30 * 365 * 86400]
MODEL_NOW = BASE + timedelta(hours=2)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


RESPONSE_ETAGS: st.SearchStrategy[Member | None] = mostly(MEMBER, st.none())
LAST_MODIFIED = mostly(date_fields([0]), st.one_of(st.none(), st.just(DateField("x", None))))
DATES = maybe(date_fields([-1, 0, 1, 3600, 7200, 10000]))
CONDITION_DATES = maybe(date_fields(AROUND))


def model(if_match: TagField | None, ius: DateField | None, inm: TagField | None,
          ims: DateField | None, etag: Member | None, lm: DateField | None,
          date: DateField | None) -> Precondition:
    """RFC 9110 13.1.1-13.1.4 and 13.2.2 on the drawn meanings, not on text."""
    current = None if etag is None or etag.garbage is not None else etag
    modified = None if lm is None else lm.instant

    def listed(field: TagField, strong: bool) -> bool:
        # True when a member matches the current tag with the given comparison (8.8.3.2).
        if current is None or not field.valid:
            return False
        return any(m.inner == current.inner and not (strong and (m.weak or current.weak))
                   for m in field.members)

    if_match_false = if_match is not None and not (if_match.star or listed(if_match, True))
    ius_false = (if_match is None and ius is not None and ius.instant is not None
                 and modified is not None and modified > ius.instant)
    server_now = date.instant if date is not None and date.instant is not None else MODEL_NOW
    inm_false = inm is not None and (inm.star or listed(inm, False))
    ims_false = (inm is None and ims is not None and ims.instant is not None
                 and modified is not None and ims.instant <= server_now
                 and modified <= ims.instant)
    if if_match_false or ius_false:
        return Precondition.FAILED
    return Precondition.NOT_MODIFIED if inm_false or ims_false else Precondition.PROCEED


def check(if_match: TagField | None, ius: DateField | None, inm: TagField | None,
          ims: DateField | None, etag: Member | None, lm: DateField | None,
          date: DateField | None) -> None:
    """The evaluator on the rendered text agrees with the model on the drawn meanings."""
    def text(field: TagField | DateField | Member | None) -> str | None:
        if field is None:
            return None
        return field.render() if isinstance(field, Member) else field.text

    got = evaluate_preconditions(text(if_match), text(ius), text(inm), text(ims), text(etag),
                                 text(lm), text(date), MODEL_NOW)
    assert got is model(if_match, ius, inm, ims, etag, lm, date)


@given(mostly(st.none(), tag_fields()), CONDITION_DATES, maybe(tag_fields()), CONDITION_DATES,
       RESPONSE_ETAGS, LAST_MODIFIED, DATES)
def test_evaluation_matches_the_model(
        if_match: TagField | None, ius: DateField | None, inm: TagField | None,
        ims: DateField | None, etag: Member | None, lm: DateField | None,
        date: DateField | None) -> None:
    check(if_match, ius, inm, ims, etag, lm, date)


@given(maybe(tag_fields()), maybe(tag_fields()), RESPONSE_ETAGS)
def test_entity_tag_steps_match_the_model(if_match: TagField | None, inm: TagField | None,
                                          etag: Member | None) -> None:
    check(if_match, None, inm, None, etag, None, None)


@given(CONDITION_DATES, CONDITION_DATES, LAST_MODIFIED, DATES)
def test_date_steps_match_the_model(ius: DateField | None, ims: DateField | None,
                                    lm: DateField | None, date: DateField | None) -> None:
    check(None, ius, None, ims, None, lm, date)


@given(st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.text(max_size=40)),
       st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.text(max_size=40)),
       st.one_of(st.none(), st.text(max_size=12)), st.one_of(st.none(), st.text(max_size=30)),
       st.one_of(st.none(), st.text(max_size=30)))
def test_evaluation_never_raises(if_match: str | None, ius: str | None, inm: str | None,
                                 ims: str | None, etag: str | None, lm: str | None,
                                 date: str | None) -> None:
    outcome = evaluate_preconditions(if_match, ius, inm, ims, etag, lm, date, NOW)
    assert isinstance(outcome, Precondition)
    assert isinstance(if_range_holds(if_match or "", etag, lm, date, NOW), bool)
