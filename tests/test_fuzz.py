"""Hostile input: property-based fuzzing of the whole middleware, and denial-of-service shapes.

Every example builds a real WSGI exchange: an application with a drawn status, header set,
size and body kind (list, generator with Content-Length, a file wrapper over a real temporary
file or a BytesIO, a raw file object, the legacy ``write()`` callable, a generator that calls
``start_response`` late), called through ``RangeMiddleware`` by a small server loop that
behaves like gunicorn (``sendfile`` from the file's OS offset for its own wrapper class) or
like wsgiref (iteration). The answer is compared with an independent model of RFC 9110
sections 13.1.5, 14 and 15.3.7 written here from the RFC text: the status, every header, the
exact bytes (multipart bodies rebuilt byte for byte from the response's boundary) and the
number of ``close()`` calls.

The coverage-guided parser harness lives in ``fuzz_parser.py``; a short bounded run of it is
part of this module.
"""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import sys
import tempfile
import wsgiref.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import HOST, ROOT, RawClient, free_port, parse_multipart, start_server
from wsgi_exchange import (
    CONTENT_RANGE,
    FIELD_CHARS,
    CountingBody,
    Headers,
    Served,
    StartResponse,
    WSGIApp,
    data_for,
    environ_for,
    serve,
)

from rangewsgi import RangeMiddleware

MAX_RANGES = 100  # the documented default (RFC 9110 17.15 "egregious range requests")
MAX_EXCESS = 4096  # the documented default multipart allowance over the representation
LATIN1 = st.characters(min_codepoint=0, max_codepoint=255)
PAST = 1_600_000_000  # a Last-Modified well in the past (2020-09-13)


# --- the model (RFC 9110, written from the text) ----------------------------------------------

# 8.8.3: entity-tag = [ weak ] opaque-tag; opaque-tag = DQUOTE *etagc DQUOTE;
# etagc = %x21 / %x23-7E / obs-text
ETAGC = frozenset([0x21, *range(0x23, 0x7F), *range(0x80, 0x100)])
OWS = " \t"  # 5.6.3
BIG = 10**40


def strong_etag(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip(OWS)
    if len(value) >= 2 and value[0] == value[-1] == '"' and all(
            ord(c) in ETAGC for c in value[1:-1]):
        return value
    return None


def digits_key(text: str) -> tuple[int, str]:
    """Exact order of two ASCII decimal numerals of any length."""
    text = text.lstrip("0")
    return (len(text), text)


def numeral(text: str) -> int:
    text = text.lstrip("0") or "0"
    return BIG if len(text) > 30 else int(text)


def model_specs(value: str) -> list[tuple[int | None, int | None]] | None:
    """14.1.1 ranges-specifier; None for an unknown unit or an invalid specifier."""
    unit, sep, rest = value.partition("=")
    if not sep or not re.fullmatch("bytes", unit, re.IGNORECASE | re.ASCII):  # 14.1 case-ins.
        return None
    if rest.count(",") > 4 * MAX_RANGES + 16:
        return None  # 5.6.1.2: only "a reasonable number of empty list elements"
    specs: list[tuple[int | None, int | None]] = []
    for element in rest.split(","):  # 5.6.1.2: empty list elements are ignored
        element = element.strip(OWS)
        if not element:
            continue
        m = re.fullmatch(r"([0-9]*)-([0-9]*)", element, re.ASCII)
        if m is None or not (m[1] or m[2]):
            return None
        if m[1] and m[2] and digits_key(m[2]) < digits_key(m[1]):
            return None  # 14.1.1: last-pos less than first-pos makes the whole header invalid
        specs.append((numeral(m[1]) if m[1] else None, numeral(m[2]) if m[2] else None))
    return specs or None


def model_ranges(specs: list[tuple[int | None, int | None]],
                 length: int) -> list[tuple[int, int]]:
    """14.1.2 satisfiable ranges, coalesced (overlap or adjacency) via a coverage map, each
    placed at the request position of its earliest member (15.3.7.2)."""
    wanted: list[tuple[int, int, int]] = []
    for order, (first, last) in enumerate(specs):
        if first is None:
            assert last is not None
            if last > 0:  # a suffix-range with a non-zero suffix-length is satisfiable
                wanted.append((max(length - last, 0), length, order))
        elif first < length:
            wanted.append((first, length if last is None else min(last + 1, length), order))
    cover = bytearray(length)
    for start, stop, _ in wanted:
        cover[start:stop] = b"\x01" * (stop - start)
    parts = []
    for run in re.finditer(rb"\x01+", bytes(cover)):
        first_order = min(o for s, _, o in wanted if run.start() <= s < run.end())
        parts.append((first_order, run.start(), run.end()))
    return [(s, e) for _, s, e in sorted(parts)]


def multipart_bytes(parts: list[tuple[int, int]], data: bytes, length: int,
                    content_type: str | None, boundary: bytes) -> bytes:
    """15.3.7.2 / 14.6 multipart/byteranges with CRLF framing, rebuilt from the RFC."""
    out = []
    for index, (start, stop) in enumerate(parts):
        out.append((b"\r\n" if index else b"") + b"--" + boundary + b"\r\n")
        if content_type is not None and all(ord(c) in FIELD_CHARS for c in content_type):
            out.append(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n")
        out.append(f"Content-Range: bytes {start}-{stop - 1}/{length}\r\n\r\n".encode())
        out.append(data[start:stop])
    out.append(b"\r\n--" + boundary + b"--\r\n")
    return b"".join(out)


@dataclass
class Case:
    """One drawn exchange."""

    method: str
    status: str
    size: int
    base: int  # bytes before the representation in a file body (its position when returned)
    body_kind: str
    cl_mode: str
    extra: Headers
    range_value: str | None
    if_range: str | None
    if_range_known: bool  # False when the If-Range outcome cannot be known (date garbage)
    server_wrapper: type | None
    uwsgi: bool
    counted: bool
    cuts: list[int] = field(default_factory=list)


FILE_KINDS = {"wrapper-file", "wrapper-bytesio", "raw-file", "raw-bytesio"}


def inner_headers(case: Case) -> Headers:
    headers = list(case.extra)
    if case.cl_mode == "exact":
        headers.append(("Content-Length", str(case.size)))
    elif case.cl_mode == "duplicate":
        headers += [("Content-Length", str(case.size))] * 2
    elif case.cl_mode.startswith("bad:"):
        headers.append(("Content-Length", case.cl_mode[4:]))
    return headers


@dataclass
class Expected:
    kind: str  # pass, full, partial, multipart, unsatisfiable
    parts: list[tuple[int, int]] = field(default_factory=list)


def model(case: Case, data: bytes, alt_if_range: bool) -> Expected:
    """The answer RFC 9110 asks for (with this project's documented MAY choices)."""
    if case.method not in ("GET", "HEAD"):
        return Expected("pass")
    headers = inner_headers(case)
    # 14.2: ranges only for what would otherwise be a 200.
    if not re.fullmatch(r"200( .*)?", case.status, re.DOTALL):
        return Expected("pass")
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    names = {k.lower() for k, _ in headers}
    if "transfer-encoding" in names or "content-range" in names:
        return Expected("pass")
    if any(k.lower() == "accept-ranges" and v.strip(OWS).lower() == "none" for k, v in headers):
        return Expected("pass")  # 14.3
    if len(lengths) > 1 or (lengths and not re.fullmatch(r"[0-9]{1,19}", lengths[0].strip(OWS),
                                                         re.ASCII)):
        return Expected("pass")  # 8.6: a single 1*DIGIT value, else the length is unknown
    if lengths:
        length = int(lengths[0].strip(OWS))
    elif case.body_kind in FILE_KINDS:
        length = case.size  # the rest of the file from its current position
    else:
        return Expected("pass")
    if case.method == "HEAD" or case.range_value is None or length == 0:
        return Expected("full")  # 14.2 GET only; MAY ignore for an empty representation
    if case.if_range is not None:
        # 13.1.5: evaluated before Range; when false, the Range header is ignored.
        holds = if_range_holds(case, headers) if case.if_range_known else alt_if_range
        if not holds:
            return Expected("full")
    specs = model_specs(case.range_value)
    if specs is None or len(specs) > MAX_RANGES:
        return Expected("full")  # 14.2 MUST ignore unknown units, MAY ignore invalid/excess
    parts = model_ranges(specs, length)
    if not parts:
        return Expected("unsatisfiable")
    if len(parts) == 1:
        return Expected("partial", parts)
    if case.body_kind not in FILE_KINDS:
        parts = sorted(parts)  # a stream cannot go back
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    size = len(multipart_bytes(parts, data, length, content_type, b"0" * 32))
    if size > length + MAX_EXCESS:
        return Expected("full")  # 17.15
    return Expected("multipart", parts)


def if_range_holds(case: Case, headers: Headers) -> bool:
    """13.1.5 for the drawn If-Range values whose meaning is known."""
    assert case.if_range is not None
    value = case.if_range.strip(OWS)
    fields = {k.lower(): v for k, v in headers}
    if '"' in value[:3]:
        return strong_etag(value) is not None and strong_etag(value) == strong_etag(
            fields.get("etag"))
    # The drawn date forms: exactly Last-Modified, with a Date at least 1 s later (or none,
    # so "now", long after PAST) making it strong (8.8.2.2).
    if fields.get("last-modified") != case.if_range:
        return False
    date = fields.get("date")
    return date is None or date != fields["last-modified"]


# --- checking one answer ----------------------------------------------------------------------

BOUNDARY = re.compile(r"multipart/byteranges; boundary=([0-9a-f]{32})")
DROP_206 = {"content-length", "content-md5", "content-digest"}
DROP_416 = DROP_206 | {"content-type", "content-encoding", "content-language",
                       "content-location", "content-disposition", "cache-control", "expires",
                       "accept-ranges"}


def assert_clean_headers(served: Served, inner: Headers) -> None:
    """Every header the middleware added is a plain field-value (5.5): no CR, LF or NUL."""
    added = [h for h in served.headers if h not in inner]
    for name, value in added:
        assert re.fullmatch(r"[A-Za-z-]+", name), name
        assert all(ord(c) in FIELD_CHARS for c in value), (name, value)


def check(case: Case, data: bytes, served: Served, expected: Expected) -> None:
    inner = inner_headers(case)
    assert_clean_headers(served, inner)
    if expected.kind == "pass":
        assert served.status == case.status
        assert served.headers == inner
        if case.method != "HEAD" and case.cl_mode == "exact":
            assert served.body == data
        return
    length = case.size
    if expected.kind == "full":
        assert served.status == case.status
        want = list(inner)
        if case.cl_mode != "exact":
            want.append(("Content-Length", str(length)))
        if not any(k.lower() == "accept-ranges" for k, _ in inner):
            want.append(("Accept-Ranges", "bytes"))  # 14.3
        assert served.headers == want
        if case.method != "HEAD":
            assert served.body == data
        return
    declared = served.header("Content-Length")
    assert declared is not None and int(declared) == len(served.body), "Content-Length"
    if expected.kind == "unsatisfiable":
        assert served.status == "416 Range Not Satisfiable"
        assert served.header("Content-Range") == f"bytes */{length}"  # 14.4 unsatisfied-range
        assert served.header("Content-Type") == "text/plain; charset=utf-8"
        assert len(served.body) < 64
        kept = [(k, v) for k, v in inner if k.lower() not in DROP_416]
        assert sorted(served.headers) == sorted([
            *kept, ("Content-Range", f"bytes */{length}"), ("Accept-Ranges", "bytes"),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(served.body)))])
        return
    assert served.status == "206 Partial Content"
    kept = [(k, v) for k, v in inner if k.lower() not in DROP_206]
    if not any(k.lower() == "accept-ranges" for k, _ in inner):
        kept.append(("Accept-Ranges", "bytes"))  # 14.3
    if expected.kind == "partial":
        # 15.3.7.1: one part, described by Content-Range.
        (start, stop), = expected.parts
        match = CONTENT_RANGE.fullmatch(served.header("Content-Range") or "")
        assert match is not None, served.headers
        first, last, complete = (int(g) for g in match.groups())
        assert (first, last + 1, complete) == (start, stop, length)
        assert first <= last < complete  # 14.4: a valid byte-range-resp
        assert served.body == data[start:stop]
        assert sorted(served.headers) == sorted([
            *kept, ("Content-Range", f"bytes {start}-{stop - 1}/{length}"),
            ("Content-Length", str(stop - start))])
        return
    # 15.3.7.2: multipart/byteranges, no top-level Content-Range, a boundary parameter.
    assert served.header("Content-Range") is None
    content_type = served.header("Content-Type") or ""
    match = BOUNDARY.fullmatch(content_type)
    assert match is not None, content_type
    ctype = next((v for k, v in inner if k.lower() == "content-type"), None)
    assert served.body == multipart_bytes(expected.parts, data, length, ctype,
                                          match[1].encode())
    parsed = parse_multipart(served.body, content_type)
    assert [p for _, p in parsed] == [data[a:b] for a, b in expected.parts]
    assert len(served.body) <= length + MAX_EXCESS
    assert sorted(served.headers) == sorted([
        *(h for h in kept if h[0].lower() != "content-type"), ("Content-Type", content_type),
        ("Content-Length", str(len(served.body)))])


# --- building the application for a case ------------------------------------------------------


class Resources:
    """Files opened for one example, to check that each was closed."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.files: list[Any] = []

    def file(self, kind: str, data: bytes, base: int) -> Any:
        prefix = random.Random(base).randbytes(base)
        if kind.endswith("bytesio"):
            fh: Any = io.BytesIO(prefix + data)
        else:
            path = self.tmp / f"body{len(self.files)}.bin"
            path.write_bytes(prefix + data)
            fh = open(path, "rb")  # noqa: SIM115 (closed by the response, checked below)
        fh.seek(base)
        self.files.append(fh)
        return fh


def make_app(case: Case, data: bytes, res: Resources, counters: list[CountingBody]) -> WSGIApp:
    headers = inner_headers(case)
    cuts = sorted({min(c, len(data)) for c in case.cuts})
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]

    def counted(body: Iterable[bytes]) -> Iterable[bytes]:
        if not case.counted:
            return body
        wrapped = CountingBody(body)
        counters.append(wrapped)
        return wrapped

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        kind = case.body_kind
        if kind == "lazy":
            def late() -> Iterator[bytes]:
                start_response(case.status, headers)
                yield from chunks
            return counted(late())
        write = start_response(case.status, headers)
        if kind == "list":
            return counted(chunks)
        if kind == "generator":
            return counted(iter(chunks))
        if kind == "write":
            for chunk in chunks[:-1]:
                write(chunk)
            return counted(chunks[-1:])
        fh = res.file(kind, data, case.base)
        if kind.startswith("wrapper"):
            wrapper = environ.get("wsgi.file_wrapper", wsgiref.util.FileWrapper)
            return wrapper(fh, 4096)  # type: ignore[no-any-return]
        return fh  # type: ignore[no-any-return]

    return app


def run_case(case: Case, alt_if_range: bool = False) -> None:
    data = data_for(case.size)
    counters: list[CountingBody] = []
    with tempfile.TemporaryDirectory(prefix="rangewsgi-fuzz-") as tmp:
        res = Resources(Path(tmp))
        # Header-exact model of ranges: the validators added to plain files are checked in
        # test_validators.py.
        app = RangeMiddleware(make_app(case, data, res, counters), file_validators=False)
        env = environ_for(case.method, case.range_value, case.if_range, case.server_wrapper,
                          case.uwsgi)
        served = serve(app, env)
        assert env.get("wsgi.file_wrapper") is case.server_wrapper  # put back (gunicorn)
        for fh in res.files:
            assert fh.closed, "the file body was not closed"
            fh.close()
    assert [c.closes for c in counters] == [1] * len(counters), "close() not called once"
    if case.if_range_known:
        check(case, data, served, model(case, data, False))
        return
    # An If-Range whose date meaning is not modelled: the answer is one of the two.
    errors = []
    for alternative in (False, True):
        try:
            check(case, data, served, model(case, data, alternative))
            return
        except AssertionError as exc:
            errors.append(exc)
    raise errors[1]


# --- strategies -------------------------------------------------------------------------------


def numerals(size: int) -> st.SearchStrategy[str]:
    near = st.integers(min_value=0, max_value=size + 3).map(str)
    return st.one_of(
        near, near, near,
        st.integers(min_value=0, max_value=2**70).map(str),
        st.tuples(st.integers(0, 40), near).map(lambda t: "0" * t[0] + t[1]),
        st.integers(20, 5000).map(lambda n: "9" * n),
    )


def range_elements(size: int) -> st.SearchStrategy[str]:
    num = numerals(size)
    ordered = st.tuples(num, num).map(
        lambda t: "-".join(sorted(t, key=digits_key)))
    valid = st.one_of(ordered, ordered, ordered, num.map(lambda n: n + "-"),
                      num.map(lambda n: "-" + n))
    return st.one_of(
        valid, valid, valid, valid, valid, valid, valid, valid,
        st.sampled_from(["-", "", " ", "--5", "+1-2", "1-+2", "0x1-2", "\xb2-3", "1 - 2",
                         "5-3", "a-b", "1-2-3", "-0", "0-0", "\t0-1\t"]),
        st.text(alphabet="0123456789- \t", max_size=8),
    )


@st.composite
def range_values(draw: st.DrawFn, size: int) -> str | None:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return None
    if choice == 1:
        return draw(st.text(alphabet=LATIN1, max_size=40))
    if choice == 2:
        return "bytes=" + draw(st.text(alphabet="0123456789-, \t", max_size=60))
    unit = draw(st.sampled_from(["bytes"] * 30 + ["BYTES", "Bytes", "items", "byte", "bytes ",
                                                 " bytes", "bytés", ""]))
    elements = draw(st.lists(range_elements(size), min_size=0, max_size=12))
    if draw(st.integers(0, 15)) == 0:
        elements = elements * draw(st.integers(9, 12))  # past max_ranges
    seps = draw(st.lists(st.sampled_from([",", ",", ", ", " ,", ",,", "\t,", ", ,"]),
                         min_size=len(elements), max_size=len(elements)))
    text = "".join(e + s for e, s in zip(elements, seps, strict=True))
    if seps and draw(st.booleans()):
        text = text[: -len(seps[-1])]
    return unit + "=" + draw(st.sampled_from(["", "", " "])) + text


ETAGS = ['"v1"', '"v1"', 'W/"v1"', "v1", '""', '"a b"', '"\xe9t\xe9"']


@st.composite
def cases(draw: st.DrawFn) -> Case:
    size = draw(st.one_of(st.integers(0, 64), st.integers(0, 3000),
                          st.sampled_from([1, 4096, 4097, 70_000])))
    body_kind = draw(st.sampled_from(["list", "generator", "lazy", "write", "wrapper-file",
                                      "wrapper-bytesio", "raw-file", "raw-bytesio"]))
    base = draw(st.sampled_from([0, 0, 0, 7])) if body_kind in FILE_KINDS else 0
    cl_choices = ["exact"] * 30 + ["duplicate", "bad:abc", "bad:+5", "bad:-1", "bad:\xb2",
                                  "bad:5,5", "bad:", "bad:99999999999999999999"]
    if body_kind in FILE_KINDS:
        cl_choices += ["none"] * 15
    cl_mode = draw(st.sampled_from(cl_choices))
    extra: Headers = []
    content_type = draw(st.sampled_from([None, "application/octet-stream", "video/mp4",
                                         "text/plain; charset=latin-1", "a/b\r\nX-Evil: 1",
                                         "x/y\x00z", "t/\xe9"]))
    if content_type is not None:
        extra.append(("Content-Type", content_type))
    etag = draw(st.sampled_from([None, *ETAGS]))
    if etag is not None:
        extra.append(("ETag", etag))
    modified = formatdate(PAST, usegmt=True)
    date_offset = draw(st.sampled_from([None, None, 0, 1, 60]))
    extra.append(("Last-Modified", modified))
    if date_offset is not None:
        extra.append(("Date", formatdate(PAST + date_offset, usegmt=True)))
    for name, value in draw(st.lists(st.sampled_from([
            ("Transfer-Encoding", "chunked"), ("Content-Range", "bytes 0-0/1"),
            ("Accept-Ranges", "none"), ("Accept-Ranges", " NONE"), ("Accept-Ranges", "bytes"),
            ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="), ("Cache-Control", "max-age=60"),
            ("Content-Digest", "sha-256=:x:"), ("Vary", "Accept-Encoding")]),
            max_size=2, unique=True)):
        if draw(st.integers(0, 3)) == 0 or name not in ("Transfer-Encoding", "Content-Range",
                                                        "Accept-Ranges"):
            extra.append((name, value))
    range_value = draw(range_values(size))
    if_choice = draw(st.integers(0, 11))
    known = True
    if_range: str | None = None
    if if_choice == 1:
        if_range = draw(st.sampled_from(ETAGS))
    elif if_choice == 2:
        if_range = modified
    elif if_choice == 3:
        if_range = formatdate(PAST + 1, usegmt=True)
    elif if_choice == 4:
        if_range = draw(st.text(alphabet=LATIN1, max_size=30))
        known = '"' in if_range.strip(OWS)[:3]
    elif if_choice == 5:
        if_range = '"' + draw(st.text(alphabet=LATIN1, max_size=10)) + '"'
    status = draw(st.sampled_from(["200 OK"] * 40 + ["200", "200 Fine", "200\tOK", "2000 OK",
                                                    "206 Partial Content", "404 Not Found",
                                                    "304 Not Modified", "500 Oops"]))
    method = draw(st.sampled_from(["GET"] * 40 + ["HEAD", "POST", "get", "PUT"]))
    cuts = draw(st.lists(st.integers(0, max(size, 0)), max_size=6))
    return Case(method, status, size, base, body_kind, cl_mode, extra, range_value, if_range,
                known, draw(st.sampled_from([None, wsgiref.util.FileWrapper,
                                             GunicornFileWrapper])),
                draw(st.integers(0, 5)) == 0, draw(st.booleans()), cuts)


# Examples per test come from the hypothesis profile (tests/conftest.py: 300 by default,
# ``--hypothesis-profile=long`` for 20,000).
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


@FUZZ
@given(cases())
def test_fuzz_exchange(case: Case) -> None:
    """Any request and response shape: no exception, and the answer the RFC model gives."""
    run_case(case)


@st.composite
def multi_ranges(draw: st.DrawFn, size: int) -> str:
    """Two to twelve valid range-specs, often out of order and overlapping."""
    specs = draw(st.lists(range_elements(size).filter(
        lambda e: model_specs("bytes=" + e) is not None), min_size=2, max_size=12))
    return "bytes=" + ",".join(specs)


@FUZZ
@given(st.data(), st.integers(1, 6000),
       st.sampled_from(["list", "generator", "lazy", "write", "wrapper-file", "wrapper-bytesio",
                        "raw-file", "raw-bytesio"]),
       st.sampled_from([None, wsgiref.util.FileWrapper, GunicornFileWrapper]),
       st.sampled_from([None, "video/mp4", "a/b\r\nX-Evil: 1", "t/\xe9\x7f"]),
       st.lists(st.integers(0, 6000), max_size=5))
def test_fuzz_multiple_ranges(data: st.DataObject, size: int, body_kind: str,
                              server_wrapper: type | None, content_type: str | None,
                              cuts: list[int]) -> None:
    """Valid multi-range requests: part order (request order for files, ascending for
    streams), coalescing and framing, byte for byte."""
    value = data.draw(multi_ranges(size))
    extra: Headers = [] if content_type is None else [("Content-Type", content_type)]
    run_case(Case("GET", "200 OK", size, 0, body_kind, "exact", extra, value, None, True,
                  server_wrapper, False, True, cuts))


@FUZZ
@given(st.text(alphabet=LATIN1, max_size=200), st.integers(0, 500),
       st.sampled_from(["list", "wrapper-file", "raw-bytesio", "generator"]))
def test_fuzz_arbitrary_range(value: str, size: int, body_kind: str) -> None:
    """Arbitrary latin-1 Range values (what a WSGI server can hand over) on plain 200s."""
    run_case(Case("GET", "200 OK", size, 0, body_kind, "exact",
                  [("Content-Type", "application/octet-stream")], value, None, True,
                  GunicornFileWrapper, False, True))


@FUZZ
@given(st.text(alphabet=LATIN1, max_size=60), st.sampled_from([*ETAGS, None]),
       st.sampled_from([None, 0, 1]))
def test_fuzz_arbitrary_if_range(value: str, etag: str | None, offset: int | None) -> None:
    """Arbitrary If-Range values never raise and give either the 206 or the full 200."""
    extra: Headers = [("Last-Modified", formatdate(PAST, usegmt=True))]
    if etag is not None:
        extra.append(("ETag", etag))
    if offset is not None:
        extra.append(("Date", formatdate(PAST + offset, usegmt=True)))
    run_case(Case("GET", "200 OK", 100, 0, "list", "exact", extra, "bytes=10-19,50-", value,
                  '"' in value.strip(OWS)[:3], None, False, True))


# --- denial-of-service shapes ------------------------------------------------------------------

APACHE_KILLER = "bytes=0-," + ",".join(f"5-{k}" for k in range(1300))  # CVE-2011-3192
DOS_SHAPES: dict[str, str] = {
    "apache-killer": APACHE_KILLER,
    "apache-killer-valid": "bytes=0-," + ",".join(f"5-{k}" for k in range(5, 1300)),
    "apache-killer-99": "bytes=0-," + ",".join(f"5-{k}" for k in range(5, 103)),
    "10000-ranges": "bytes=" + ",".join(f"{2 * k}-{2 * k}" for k in range(10_000)),
    "1MiB-ranges": "bytes=" + ("0-1," * (1 << 18))[:-1],
    "1MiB-number": "bytes=" + "1" * (1 << 20) + "-",
    "1MiB-suffix": "bytes=-" + "7" * (1 << 20),
    "1MiB-commas": "bytes=" + "," * (1 << 20) + "0-0",
    "1MiB-spaces": "bytes=" + " " * (1 << 20) + "0-0",
    "1MiB-junk": "bytes=" + "x" * (1 << 20),
    "5000-digit-last": "bytes=0-" + "9" * 5000,
    "5000-digit-first": "bytes=" + "9" * 5000 + "-",
    "5000-digit-both": "bytes=" + "9" * 4999 + "-" + "9" * 5000,
    "5000-digit-inverted": "bytes=" + "9" * 5000 + "-" + "9" * 4999,
    "5000-digit-zeros": "bytes=" + "0" * 5000 + "5-" + "0" * 5000 + "9",
    "5000-digit-suffix": "bytes=-" + "9" * 5000,
    "99-full": "bytes=" + ",".join(["0-"] * 99),
    "100-small": "bytes=" + ",".join(f"{k * 97}-{k * 97}" for k in range(100)),
    "101-small": "bytes=" + ",".join(f"{k * 97}-{k * 97}" for k in range(101)),
    "100-descending": "bytes=" + ",".join(f"{k * 500}-{k * 500 + 9}" for k in range(99, -1, -1)),
    "100-overlapping": "bytes=" + ",".join(f"{k}-{k + 1000}" for k in range(100)),
}


@pytest.mark.parametrize("size", [1000, 100_000])
@pytest.mark.parametrize("body_kind", ["list", "wrapper-file"])
@pytest.mark.parametrize("shape", sorted(DOS_SHAPES))
def test_dos_shape(shape: str, body_kind: str, size: int) -> None:
    """Each abusive shape gets the model's answer, and never much more than the file."""
    value = DOS_SHAPES[shape]
    case = Case("GET", "200 OK", size, 0, body_kind, "exact",
                [("Content-Type", "video/mp4")], value, None, True, GunicornFileWrapper,
                False, True, [size // 3])
    data = data_for(size)
    with tempfile.TemporaryDirectory() as tmp:
        res = Resources(Path(tmp))
        app = RangeMiddleware(make_app(case, data, res, []), file_validators=False)
        served = serve(app, environ_for("GET", value, server_wrapper=GunicornFileWrapper))
        for fh in res.files:
            fh.close()
    expected = model(case, data, False)
    check(case, data, served, expected)
    assert len(served.body) <= size + MAX_EXCESS
    if shape.startswith(("apache-killer", "10000", "1MiB-ranges", "101")):
        assert served.code == 200 or expected.kind == "partial"


def test_dos_shape_answers() -> None:
    """The concrete answers the documentation states for the famous shapes."""
    size = 100_000
    data = data_for(size)

    def answer(value: str) -> Served:
        app = RangeMiddleware(lambda e, s: (s("200 OK", [("Content-Length", str(size))]),
                                            [data])[1])
        return serve(app, environ_for("GET", value))

    # "5-0" is an invalid int-range, so the whole header is ignored (14.1.1, 14.2).
    assert answer(APACHE_KILLER).code == 200
    # Without the invalid element every range overlaps "0-": one part, the whole file.
    for shape in ("apache-killer-99", "99-full"):
        got = answer(DOS_SHAPES[shape])
        assert (got.code, got.header("Content-Range"), got.body) == (
            206, f"bytes 0-{size - 1}/{size}", data)
    assert answer(DOS_SHAPES["apache-killer-valid"]).code == 200  # more than 100 specs
    assert answer(DOS_SHAPES["5000-digit-first"]).code == 416
    assert answer(DOS_SHAPES["5000-digit-inverted"]).code == 200
    zeros = answer(DOS_SHAPES["5000-digit-zeros"])
    assert (zeros.code, zeros.body) == (206, data[5:10])
    hundred = answer(DOS_SHAPES["100-small"])
    assert hundred.code == 206 and len(parse_multipart(
        hundred.body, hundred.header("Content-Type") or "")) == 100


@pytest.mark.network
def test_dos_shapes_over_waitress(tmp_path: Path) -> None:
    """The same shapes through a real server (waitress accepts long header fields)."""
    size = 50_000
    path = tmp_path / "data.bin"
    data = data_for(size)
    path.write_bytes(data)
    port = free_port()
    server = start_server([sys.executable, "-m", "waitress", f"--listen={HOST}:{port}",
                           "serverapps:app"], port, env={"RANGEWSGI_TEST_FILE": str(path)},
                          cwd=tmp_path, log_path=tmp_path / "waitress.log")
    try:
        with RawClient(port) as client:
            for shape in ("apache-killer", "apache-killer-99", "5000-digit-last", "100-small",
                          "100-descending", "5000-digit-zeros"):
                for route in ("/file", "/gen"):
                    got = client.request(route, {"Range": DOS_SHAPES[shape]})
                    case = Case("GET", "200 OK", size, 0,
                                "wrapper-file" if route == "/file" else "generator", "exact",
                                [("Content-Type", "application/octet-stream")],
                                DOS_SHAPES[shape], None, True, None, False, False)
                    expected = model(case, data, False)
                    assert got.status == {"full": 200, "partial": 206, "multipart": 206,
                                          "unsatisfiable": 416}[expected.kind], shape
                    assert len(got.body) <= size + MAX_EXCESS
                    if expected.kind == "multipart":
                        parts = parse_multipart(got.body, got.header("Content-Type") or "")
                        assert [p for _, p in parts] == [data[a:b] for a, b in expected.parts]
                    elif expected.kind == "partial":
                        (a, b), = expected.parts
                        assert got.body == data[a:b]
                    elif expected.kind == "full":
                        assert got.body == data
            client.assert_idle()
    finally:
        server.stop()


# --- the coverage-guided parser harness, bounded ------------------------------------------------


@pytest.mark.slow
def test_coverage_guided_parser(tmp_path: Path) -> None:
    """Run ``fuzz_parser.py`` (atheris/libFuzzer) for about 20 seconds: no crash, no hang."""
    if os.environ.get("CI") != "true":
        pytest.importorskip("atheris")
    seconds = os.environ.get("RANGEWSGI_ATHERIS_SECONDS", "20")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fuzz_parser.py"), f"-max_total_time={seconds}",
         "-timeout=10", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/"],
        cwd=tmp_path, capture_output=True, text=True, timeout=int(seconds) + 120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "Done" in log, log[-4000:]
    assert not list(tmp_path.glob("crash-*")), log[-4000:]
