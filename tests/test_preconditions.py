"""Conditional requests through the middleware (RFC 9110 13.2.2): 412 and 304 before ranges,
validators for plain files, and the app's own answers left alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from inprocess import Result, Tracker, call, make_app

from rangewsgi import RangeMiddleware
from rangewsgi.httpdate import format_http_date

DATA = bytes(range(256)) * 40
ETAG = '"v1"'
LM = "Sat, 21 Nov 2026 10:00:00 GMT"
BEFORE = "Sat, 21 Nov 2026 09:59:59 GMT"
AFTER = "Sat, 21 Nov 2026 10:00:01 GMT"
DATE = "Sat, 21 Nov 2026 11:00:00 GMT"
APP_HEADERS = [("Content-Type", "video/mp4"), ("ETag", ETAG), ("Last-Modified", LM),
               ("Date", DATE), ("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding"),
               ("Content-Location", "/v.mp4"), ("Expires", "Sat, 21 Nov 2026 12:00:00 GMT"),
               ("Set-Cookie", "s=1"), ("Content-Language", "en"),
               ("Content-Disposition", "inline"), ("Access-Control-Allow-Origin", "*")]


def ask(headers: dict[str, str], method: str = "GET", kind: str = "list",
        tracker: Tracker | None = None, **options: Any) -> Result:
    app = RangeMiddleware(make_app(kind, DATA, headers=APP_HEADERS, tracker=tracker),
                          **options)
    return call(app, method, headers)


# --- 13.2.2 order --------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "status"), [
    # Step 1: If-Match false -> 412, whatever else is there.
    ({"If-Match": '"v2"'}, 412),
    ({"If-Match": '"v2"', "If-None-Match": ETAG}, 412),
    ({"If-Match": '"v2"', "Range": "bytes=0-9"}, 412),
    ({"If-Match": 'W/"v1"'}, 412),  # 13.1.1: strong comparison
    ({"If-Match": "*"}, 200),
    ({"If-Match": f'"x", {ETAG}'}, 200),
    # Step 2: If-Unmodified-Since only without If-Match.
    ({"If-Unmodified-Since": BEFORE}, 412),
    ({"If-Unmodified-Since": LM}, 200),
    ({"If-Unmodified-Since": BEFORE, "If-Match": ETAG}, 200),
    ({"If-Unmodified-Since": "garbage"}, 200),  # 13.1.4: an invalid date is ignored
    # Step 3: If-None-Match matches -> 304 for GET and HEAD; before Range.
    ({"If-None-Match": ETAG}, 304),
    ({"If-None-Match": 'W/"v1"'}, 304),  # 13.1.2: weak comparison
    ({"If-None-Match": "*"}, 304),
    ({"If-None-Match": ETAG, "Range": "bytes=0-9"}, 304),
    ({"If-None-Match": '"v2"', "Range": "bytes=0-9"}, 206),
    # Step 4: If-Modified-Since only without If-None-Match.
    ({"If-Modified-Since": LM}, 304),
    ({"If-Modified-Since": AFTER}, 304),
    ({"If-Modified-Since": BEFORE}, 200),
    ({"If-Modified-Since": LM, "If-None-Match": '"v2"'}, 200),
    ({"If-Modified-Since": "Sun, 22 Nov 2026 10:00:00 GMT"}, 200),  # later than Date: ignored
    ({"If-Modified-Since": "Sat, 21 Nov 2026 10:00:00 +0000"}, 200),  # not an HTTP-date
    # Step 5: If-Range and Range as before.
    ({"Range": "bytes=0-9", "If-Range": ETAG, "If-Match": ETAG}, 206),
    ({"Range": "bytes=0-9", "If-Range": '"v2"'}, 200),
    ({"Range": "bytes=99999-", "If-None-Match": ETAG}, 304),
])
def test_rfc9110_13_2_2_order(headers: dict[str, str], status: int) -> None:
    result = ask(headers)
    assert result.code == status, (headers, result.status)
    if status == 200:
        assert result.body == DATA
    elif status == 206:
        assert result.body == DATA[:10]


def test_304_carries_what_15_4_5_requires_and_no_content() -> None:
    result = ask({"If-None-Match": ETAG})
    assert result.status == "304 Not Modified" and result.body == b""
    names = {name.lower() for name, _ in result.headers}
    # MUST: "Content-Location, Date, ETag, Vary, Cache-Control, Expires" as the 200 would.
    for name in ("ETag", "Date", "Vary", "Cache-Control", "Expires", "Content-Location"):
        assert result.header(name) == dict(APP_HEADERS)[name]
    # SHOULD NOT: other representation metadata; Last-Modified only without an ETag.
    for name in ("content-type", "content-language", "content-disposition",
                 "content-length", "last-modified", "accept-ranges"):
        assert name not in names
    # Fields that are not about the representation stay, as on a 206.
    assert result.header("Set-Cookie") == "s=1"
    assert result.header("Access-Control-Allow-Origin") == "*"


def test_304_keeps_last_modified_when_there_is_no_etag() -> None:
    headers = [(n, v) for n, v in APP_HEADERS if n != "ETag"]
    app = RangeMiddleware(make_app("list", DATA, headers=headers))
    result = call(app, "GET", {"If-Modified-Since": LM})
    assert result.code == 304 and result.header("Last-Modified") == LM


def test_412_has_a_short_body_and_never_the_representation() -> None:
    result = ask({"If-Match": '"other"'})
    assert result.status == "412 Precondition Failed"
    assert result.body == b"412 Precondition Failed\n"
    assert result.header("Content-Length") == str(len(result.body))
    assert result.header("Content-Type") == "text/plain; charset=utf-8"
    assert result.header("Content-Range") is None and result.header("Set-Cookie") == "s=1"


@pytest.mark.parametrize("kind", ["list", "generator", "lazy_generator", "file_wrapper",
                                  "raw_file", "write"])
@pytest.mark.parametrize("headers", [{"If-None-Match": ETAG}, {"If-Match": '"x"'}])
def test_inner_body_closed_once_and_not_read(kind: str, headers: dict[str, str]) -> None:
    tracker = Tracker()
    result = ask(headers, kind=kind, tracker=tracker)
    assert result.code in (304, 412)
    assert tracker.closes == 1
    assert all(f.closed for f in tracker.files)
    assert DATA[:100] not in result.body


@pytest.mark.parametrize("headers", [{"If-None-Match": ETAG}, {"If-Match": '"x"'}])
def test_head_gets_the_same_status_without_content(headers: dict[str, str]) -> None:
    get, head = ask(headers), ask(headers, method="HEAD")
    assert head.status == get.status and head.body == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_unsafe_methods_are_untouched(method: str) -> None:
    # 13.2.1: preconditions are evaluated before the method is performed, which a middleware
    # that sees only the response cannot do: it leaves them to the app.
    headers = {"If-Match": '"other"', "If-None-Match": ETAG}
    inner = make_app("list", DATA, headers=APP_HEADERS)
    bare, wrapped = call(inner, method, headers), call(RangeMiddleware(inner), method, headers)
    assert (wrapped.status, wrapped.headers, wrapped.body) == (bare.status, bare.headers,
                                                               bare.body)


@pytest.mark.parametrize("status", ["304 Not Modified", "412 Precondition Failed"])
def test_the_apps_own_304_and_412_pass_through(status: str) -> None:
    headers = [("ETag", ETAG)] if status[0:3] == "304" else [("ETag", ETAG),
                                                              ("Content-Type", "text/plain")]
    inner = make_app("list", b"", status=status, headers=headers, with_length=False)
    request = {"If-None-Match": ETAG, "Range": "bytes=0-1"}
    bare, wrapped = call(inner, "GET", request), call(RangeMiddleware(inner), "GET", request)
    assert (wrapped.status, wrapped.headers, wrapped.body) == (bare.status, bare.headers,
                                                               bare.body)


def test_conditional_false_turns_preconditions_off() -> None:
    result = ask({"If-None-Match": ETAG, "Range": "bytes=0-9"}, conditional=False)
    assert result.code == 206 and result.body == DATA[:10]
    assert ask({"If-Match": '"x"'}, conditional=False).code == 200


def test_length_unknown_still_revalidates() -> None:
    app = RangeMiddleware(make_app("generator", DATA, headers=APP_HEADERS, with_length=False))
    assert call(app, "GET", {"If-None-Match": ETAG}).code == 304
    result = call(app, "GET", {"If-None-Match": '"x"', "Range": "bytes=0-1"})
    assert result.code == 200 and result.body == DATA


# --- validators for plain files --------------------------------------------------------------

def file_app(path: Path, headers: list[tuple[str, str]] | None = None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", headers or [("Content-Type", "video/mp4")])
        return environ["wsgi.file_wrapper"](open(path, "rb"))

    return app


@pytest.fixture
def media(tmp_path: Path) -> Path:
    path = tmp_path / "v.mp4"
    path.write_bytes(DATA)
    os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    return path


def test_plain_get_of_a_file_carries_strong_validators(media: Path) -> None:
    result = call(RangeMiddleware(file_app(media)), "GET")
    assert result.code == 200 and result.body == DATA
    etag = result.header("ETag")
    # From the size and the modification time in nanoseconds only (no inode): the same file
    # on another machine gets the same tag.
    assert etag == f'"{1_700_000_000_123_456_789:x}-{len(DATA):x}"'
    assert result.header("Last-Modified") == format_http_date(1_700_000_000)
    copy = media.with_name("copy.mp4")
    copy.write_bytes(DATA)
    os.utime(copy, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    assert call(RangeMiddleware(file_app(copy)), "GET").header("ETag") == etag
    assert os.stat(copy).st_ino != os.stat(media).st_ino


def test_file_validators_make_if_range_and_304_work(media: Path) -> None:
    app = RangeMiddleware(file_app(media))
    etag = call(app, "GET").header("ETag")
    assert etag is not None
    assert call(app, "GET", {"If-None-Match": etag}).code == 304
    resumed = call(app, "GET", {"Range": "bytes=100-", "If-Range": etag})
    assert resumed.code == 206 and resumed.body == DATA[100:]
    os.utime(media, ns=(1_700_000_001_000_000_000, 1_700_000_001_000_000_000))
    changed = call(app, "GET", {"Range": "bytes=100-", "If-Range": etag})
    assert changed.code == 200 and changed.body == DATA
    assert call(app, "GET", {"If-None-Match": etag}).code == 200


def test_app_validators_are_never_replaced(media: Path) -> None:
    for given in ([("ETag", '"app"')], [("Last-Modified", LM)]):
        app = RangeMiddleware(file_app(media, [("Content-Type", "video/mp4"), *given]))
        result = call(app, "GET")
        assert [(n, v) for n, v in result.headers if n in ("ETag", "Last-Modified")] == given


def test_file_validators_false(media: Path) -> None:
    result = call(RangeMiddleware(file_app(media), file_validators=False), "GET")
    assert result.header("ETag") is None and result.header("Last-Modified") is None


def test_declined_predicate_leaves_a_file_answer_untouched(media: Path) -> None:
    inner = file_app(media)
    app = RangeMiddleware(inner, predicate=lambda environ, headers, length: False)
    for headers in ({}, {"Range": "bytes=0-9"}, {"If-None-Match": "*"}):
        wrapped, bare = call(app, "GET", headers), call(inner, "GET", headers)
        assert (wrapped.status, wrapped.headers, wrapped.body) == (bare.status, bare.headers,
                                                                   bare.body)
