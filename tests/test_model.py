"""Property test: every answer equals a slicing model of RFC 9110, byte for byte.

The model (``rfc_model.py``) is written independently of the package (plain string handling,
Python slicing); here it judges random sizes, random well-formed and garbage Range / If-Range
headers, response header sets, statuses, methods and every body kind.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inprocess import BODY_KINDS, Tracker, call, make_app
from rfc_model import (
    DATE,
    DATES,
    LM,
    TAG_FIELDS,
    check,
    expected,
    if_range_header,
    model_preconditions,
    model_request,
    range_header,
)

from rangewsgi import RangeMiddleware


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600), kind=st.sampled_from(BODY_KINDS),
       chunk_sizes=st.lists(st.integers(1, 90), min_size=1, max_size=4),
       rng=range_header, if_range=if_range_header,
       etag=st.sampled_from([None, '"v1"', 'W/"v1"']), method=st.sampled_from(["GET", "HEAD"]),
       max_ranges=st.sampled_from([2, 5, 100]))
def test_every_answer_matches_the_model(data: bytes, kind: str, chunk_sizes: list[int],
                                        rng: str | None, if_range: str | None,
                                        etag: str | None, method: str, max_ranges: int) -> None:
    headers = [("Content-Type", "application/x-test"), ("Last-Modified", LM), ("Date", DATE)]
    if etag is not None:
        headers.append(("ETag", etag))
    tracker = Tracker()
    app = RangeMiddleware(make_app(kind, data, headers=headers, chunk_sizes=chunk_sizes,
                                   tracker=tracker), max_ranges=max_ranges)
    request, shape, ranges = model_request(method, rng, if_range, etag, len(data), max_ranges)
    result = call(app, method, request)
    check(result, shape, ranges, data, kind, method)
    # PEP 3333: the inner body is closed exactly once, whatever the answer.
    assert tracker.closes == 1
    assert all(f.closed for f in tracker.files)


@settings(deadline=None)
@given(data=st.binary(max_size=300), kind=st.sampled_from(BODY_KINDS),
       status=st.sampled_from(["404 Not Found", "206 Partial Content", "201 Created",
                               "200 OK"]),
       extra=st.sampled_from([[], [("Accept-Ranges", "none")],
                              [("Content-Range", "bytes 0-0/1")]]),
       rng=range_header)
def test_what_is_not_ours_passes_through_byte_for_byte(data: bytes, kind: str, status: str,
                                                       extra: list[tuple[str, str]],
                                                       rng: str | None) -> None:
    if status.startswith("200") and not extra:
        return  # rangeable: covered above
    headers = [("Content-Type", "text/plain"), *extra]

    def inner() -> Any:
        return make_app(kind, data, status=status, headers=headers)

    request = {"Range": rng} if rng is not None else {}
    bare = call(inner(), "GET", request)
    wrapped = call(RangeMiddleware(inner()), "GET", request)
    assert (wrapped.status, wrapped.headers, wrapped.body) == (bare.status, bare.headers,
                                                               bare.body)


# --- preconditions (RFC 9110 13.2.2) before ranges -----------------------------------------

@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(min_size=1, max_size=300), kind=st.sampled_from(BODY_KINDS),
       rng=st.sampled_from([None, "bytes=0-9", "bytes=-5", "bytes=5-,0-1", "bytes=9999-"]),
       if_range=st.sampled_from([None, '"v1"', LM]),
       etag=st.sampled_from([None, '"v1"', 'W/"v1"']), method=st.sampled_from(["GET", "HEAD"]),
       if_match=st.sampled_from(TAG_FIELDS), if_none_match=st.sampled_from(TAG_FIELDS),
       ims=st.sampled_from([None, *DATES]), ius=st.sampled_from([None, *DATES]))
def test_preconditions_then_ranges_match_the_model(
        data: bytes, kind: str, rng: str | None, if_range: str | None, etag: str | None,
        method: str, if_match: str | None, if_none_match: str | None, ims: str | None,
        ius: str | None) -> None:
    headers = [("Content-Type", "application/x-test"), ("Last-Modified", LM), ("Date", DATE)]
    if etag is not None:
        headers.append(("ETag", etag))
    fields = {name: value for name, value in [
        ("If-Match", if_match), ("If-None-Match", if_none_match), ("If-Modified-Since", ims),
        ("If-Unmodified-Since", ius), ("Range", rng), ("If-Range", if_range)]
        if value is not None}
    tracker = Tracker()
    app = RangeMiddleware(make_app(kind, data, headers=headers, tracker=tracker))
    result = call(app, method, fields)
    outcome = model_preconditions(fields, etag)
    if outcome == "412":
        assert result.status == "412 Precondition Failed"
        assert result.body == (b"412 Precondition Failed\n" if method == "GET" else b"")
    elif outcome == "304":
        assert result.status == "304 Not Modified" and result.body == b""
        assert result.header("ETag") == etag
        assert result.header("Content-Type") is None
    else:
        shape, ranges = expected(method, rng, if_range, etag, len(data), 100)
        check(result, shape, ranges, data, kind, method)
    assert tracker.closes == 1
    assert all(f.closed for f in tracker.files)
