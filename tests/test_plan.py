"""The pure decision (RFC 9110 14.2, 13.1.5, 14.1.2, 15.3.7, 15.5.17, 17.15)."""

from __future__ import annotations

import pytest

from rangewsgi.plan import Headers, Kind, Limits, Plan, plan, read_headers

LIMITS = Limits()
BASE: Headers = [("Content-Type", "video/mp4"), ("ETag", '"v1"'),
                 ("Last-Modified", "Sat, 21 Nov 2026 10:00:00 GMT"),
                 ("Date", "Sat, 21 Nov 2026 11:00:00 GMT"), ("Cache-Control", "max-age=60"),
                 ("Expires", "Sat, 21 Nov 2026 11:01:00 GMT"), ("Vary", "Accept-Encoding"),
                 ("Content-Location", "/v.mp4"), ("Content-MD5", "xyz"),
                 ("Content-Digest", "sha-256=:abc=:"), ("X-Custom", "1")]


def decide(range_value: str | None, length: int = 1000, headers: Headers | None = None,
           if_range: str | None = None, limits: Limits = LIMITS) -> Plan:
    hdrs = [*(BASE if headers is None else headers), ("Content-Length", str(length))]
    facts = read_headers("200 OK", hdrs)
    assert facts is not None
    return plan(range_value, if_range, "200 OK", hdrs, facts, length, limits)


def names(p: Plan) -> list[str]:
    return [n.lower() for n, _ in p.headers]


@pytest.mark.parametrize(("status", "headers"), [
    ("206 Partial Content", []),
    ("404 Not Found", []),
    ("2000 Weird", []),
    ("201 Created", []),
    ("200 OK", [("Transfer-Encoding", "chunked")]),
    ("200 OK", [("Content-Range", "bytes 0-1/2")]),
    ("200 OK", [("Accept-Ranges", "none")]),
    ("200 OK", [("Accept-Ranges", " None ")]),
    ("200 OK", [("Content-Length", "10"), ("Content-Length", "10")]),
    ("200 OK", [("Content-Length", "+10")]),
    ("200 OK", [("Content-Length", "1_0")]),
    ("200 OK", [("Content-Length", "\xb2")]),
    ("200 OK", [("Content-Length", "")]),
])
def test_what_passes_through(status: str, headers: Headers) -> None:
    # 14.2: only a would-be 200 is ranged; already-ranged, app-framed and
    # "Accept-Ranges: none" (14.3) responses are left alone.
    assert read_headers(status, headers) is None


def test_rangeable_facts() -> None:
    facts = read_headers("200 OK", [("content-length", " 42 "), ("ETAG", '"x"')])
    assert facts is not None and facts.length == 42 and facts.etag == '"x"'
    assert read_headers("200", []) is not None


def test_no_range_is_a_full_200_with_accept_ranges() -> None:
    p = decide(None)
    assert p.kind is Kind.FULL and p.status == "200 OK"
    assert ("Accept-Ranges", "bytes") in p.headers
    assert p.headers[:len(BASE)] == BASE


def test_app_accept_ranges_is_not_duplicated() -> None:
    p = decide(None, headers=[("Accept-Ranges", "bytes")])
    assert names(p).count("accept-ranges") == 1


def test_single_range_headers() -> None:
    p = decide("bytes=10-19")
    assert p.kind is Kind.PARTIAL and p.status == "206 Partial Content"
    hdrs = dict(p.headers)
    assert hdrs["Content-Range"] == "bytes 10-19/1000"  # 15.3.7.1
    assert hdrs["Content-Length"] == "10"
    # 15.3.7: Date, Cache-Control, ETag, Expires, Content-Location and Vary are kept.
    for name in ("Date", "Cache-Control", "ETag", "Expires", "Content-Location", "Vary",
                 "Last-Modified", "Content-Type", "X-Custom"):
        assert hdrs[name] == dict(BASE)[name]
    # Digests of the whole representation do not describe the partial content.
    assert "content-md5" not in names(p) and "content-digest" not in names(p)
    assert names(p).count("content-length") == 1


def test_multipart_headers() -> None:
    p = decide("bytes=0-9,100-109")
    assert p.kind is Kind.MULTIPART and p.framing is not None
    hdrs = dict(p.headers)
    assert hdrs["Content-Type"] == "multipart/byteranges; boundary=" + p.framing.boundary
    assert "content-range" not in names(p)  # 15.3.7.2 MUST NOT
    assert int(hdrs["Content-Length"]) == p.framing.content_length
    assert names(p).count("content-type") == 1


def test_unsatisfiable_is_416_with_current_length() -> None:
    p = decide("bytes=1000-")
    assert p.kind is Kind.UNSATISFIABLE and p.status == "416 Range Not Satisfiable"
    hdrs = dict(p.headers)
    assert hdrs["Content-Range"] == "bytes */1000"  # 14.4, 15.5.17
    assert hdrs["Content-Type"].startswith("text/plain")
    assert hdrs["ETag"] == '"v1"' and "Cache-Control" not in hdrs
    assert names(p).count("content-length") == 1


@pytest.mark.parametrize("value", ["bytes=-0", "bytes=1000-2000", "bytes=5000-,-0"])
def test_all_unsatisfiable(value: str) -> None:
    assert decide(value).kind is Kind.UNSATISFIABLE


def test_empty_representation_is_always_200() -> None:
    for value in ("bytes=0-", "bytes=-5", "bytes=-0", "bytes=3-"):
        assert decide(value, length=0).kind is Kind.FULL


def test_if_range_is_evaluated_first() -> None:
    # 13.1.5: when false, "ignore the Range header field", even an unsatisfiable one.
    assert decide("bytes=5000-", if_range='"other"').kind is Kind.FULL
    assert decide("bytes=0-1", if_range='"v1"').kind is Kind.PARTIAL
    assert decide("bytes=0-1", if_range='W/"v1"').kind is Kind.FULL
    assert decide("bytes=0-1", if_range="Sat, 21 Nov 2026 10:00:00 GMT").kind is Kind.PARTIAL
    assert decide("bytes=0-1", if_range="Sat, 21 Nov 2026 10:00:01 GMT").kind is Kind.FULL


def test_too_many_ranges_are_ignored() -> None:
    value = "bytes=" + ",".join(f"{i * 3}-{i * 3}" for i in range(101))
    assert decide(value, length=10_000).kind is Kind.FULL
    assert decide(value, length=10_000, limits=Limits(max_ranges=200)).kind is Kind.MULTIPART


def test_apache_killer_is_ignored() -> None:
    # CVE-2011-3192: 1300 list elements are refused before they are even validated (its
    # "5-0" .. "5-4" would make it invalid too, 14.1.1); the valid variant likewise.
    value = "bytes=0-," + ",".join(f"5-{i}" for i in range(1300))
    p = decide(value, length=10_000)
    assert p.kind is Kind.FULL and p.reason == "too many ranges"
    valid = "bytes=0-," + ",".join(f"5-{i}" for i in range(5, 1300))
    p = decide(valid, length=10_000)
    assert p.kind is Kind.FULL and p.reason == "too many ranges"


def test_multipart_much_larger_than_the_representation_is_ignored() -> None:
    # 17.15: many small ranges; 60 one-byte parts of a 200-byte body would be ~6 KB.
    value = "bytes=" + ",".join(f"{i * 3}-{i * 3}" for i in range(60))
    p = decide(value, length=200)
    assert p.kind is Kind.FULL and p.reason == "multipart larger than the representation"
    assert decide(value, length=200, limits=Limits(max_multipart_excess=10**6)).kind \
        is Kind.MULTIPART
