"""Options, the ``predicate`` opt-out and the DEBUG decision log of ``RangeMiddleware``.

A response the predicate declines must reach the client exactly as the inner application made
it: same status, same header list, same bytes, and no ``Accept-Ranges`` (RFC 9110 section 14.3
lets a server advertise ranges; a declined response must not promise them). Every decision is
logged once at DEBUG on the ``rangewsgi`` logger.
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Iterable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, send_file
from support import parse_multipart
from werkzeug.test import Client, TestResponse

from rangewsgi import RangeMiddleware
from rangewsgi.decision import ranged_media_type
from rangewsgi.paste import ConfigError, filter_app_factory, parse_bool, parse_int

SIZE = 50_021
SMALL = 700
BLOCK = 4096
LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)
DATE = formatdate(1_700_000_600, usegmt=True)
ETAG = '"v1"'


@pytest.fixture(scope="module")
def data() -> bytes:
    return random.Random(9110).randbytes(SIZE)


@pytest.fixture
def data_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path


def make_app(path: Path) -> Any:
    """Range-unaware routes with different paths, content types, sizes and body kinds."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        route = environ.get("PATH_INFO", "")
        data = path.read_bytes()
        validators = [("ETag", ETAG), ("Last-Modified", LAST_MODIFIED), ("Date", DATE)]
        if route in ("/media/clip.bin", "/private/clip.bin"):
            start_response("200 OK", [("Content-Type", "video/mp4"),
                                      ("Content-Length", str(SIZE)), *validators])
            wrapper = environ.get("wsgi.file_wrapper")
            handle = open(path, "rb")  # noqa: SIM115 - closed through the body
            if wrapper is not None:
                return wrapper(handle, BLOCK)  # type: ignore[no-any-return]
            handle.close()
            return [data]
        if route == "/page.html":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(SIZE)), *validators])
            return [data[i:i + BLOCK] for i in range(0, SIZE, BLOCK)]
        if route == "/small.bin":
            start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                      ("Content-Length", str(SMALL))])
            return [data[:SMALL]]
        if route == "/unknown-length":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return _chunks(data)
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "9")])
        return [b"not found"]

    return app


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), BLOCK):
        yield data[i:i + BLOCK]


def by_path(environ: dict[str, Any], headers: list[tuple[str, str]], length: int) -> bool:
    return str(environ.get("PATH_INFO", "")).startswith("/media/")


def by_content_type(environ: dict[str, Any], headers: list[tuple[str, str]],
                    length: int) -> bool:
    types = [v for k, v in headers if k.lower() == "content-type"]
    return bool(types) and types[0].split("/")[0] in ("video", "audio")


def by_size(environ: dict[str, Any], headers: list[tuple[str, str]], length: int) -> bool:
    return length >= 1024


def fetch(app: Any, path: str, headers: dict[str, str] | None = None,
          method: str = "GET") -> TestResponse:
    return Client(app).open(path, method=method, headers=headers or {})


def same_response(a: TestResponse, b: TestResponse) -> None:
    assert a.status == b.status
    assert a.headers.to_wsgi_list() == b.headers.to_wsgi_list()
    assert a.get_data() == b.get_data()


# -- predicate --

@pytest.mark.parametrize(("predicate", "declined", "ranged"), [
    (by_path, ["/private/clip.bin", "/page.html", "/small.bin"], ["/media/clip.bin"]),
    (by_content_type, ["/page.html", "/small.bin"], ["/media/clip.bin", "/private/clip.bin"]),
    (by_size, ["/small.bin"], ["/media/clip.bin", "/private/clip.bin", "/page.html"]),
], ids=["path", "content-type", "size"])
def test_predicate_opts_out(data_file: Path, data: bytes, predicate: Any,
                            declined: list[str], ranged: list[str]) -> None:
    inner = make_app(data_file)
    app = RangeMiddleware(inner, predicate=predicate)
    for path in declined:
        for headers in ({}, {"Range": "bytes=0-9"}, {"Range": "bytes=0-1,5-6"},
                        {"Range": f"bytes={SIZE * 2}-"}):
            got = fetch(app, path, headers)
            same_response(got, fetch(inner, path, headers))
            assert got.status_code == 200
            assert "Accept-Ranges" not in got.headers
        head = fetch(app, path, method="HEAD")
        bare_head = fetch(inner, path, method="HEAD")
        assert head.status == bare_head.status
        assert head.headers.to_wsgi_list() == bare_head.headers.to_wsgi_list()
        # A pass-through HEAD is the app's answer, body included: the server drops the body.
        assert head.get_data() == bare_head.get_data()
        assert "Accept-Ranges" not in head.headers
    for path in ranged:
        whole = fetch(app, path)
        assert whole.headers["Accept-Ranges"] == "bytes"
        assert whole.get_data() == data
        part = fetch(app, path, {"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.get_data() == data[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{SIZE}"


def test_predicate_sees_environ_headers_and_length(data_file: Path) -> None:
    seen: list[tuple[str, list[tuple[str, str]], int]] = []

    def record(environ: dict[str, Any], headers: list[tuple[str, str]], length: int) -> bool:
        seen.append((environ["PATH_INFO"], list(headers), length))
        return True

    app = RangeMiddleware(make_app(data_file), predicate=record)
    fetch(app, "/small.bin", {"Range": "bytes=0-0"})
    fetch(app, "/page.html")
    fetch(app, "/nowhere", {"Range": "bytes=0-0"})  # a 404 never reaches the predicate
    assert [(p, n) for p, _, n in seen] == [("/small.bin", SMALL), ("/page.html", SIZE)]
    assert ("Content-Type", "text/html; charset=utf-8") in seen[1][1]


# -- the DEBUG decision log --

def decision_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rangewsgi"]


@pytest.mark.parametrize(("path", "method", "headers", "kind", "reason", "status"), [
    ("/nowhere", "GET", {"Range": "bytes=0-1"}, "pass", "not a rangeable 200", 404),
    ("/unknown-length", "GET", {"Range": "bytes=0-1"}, "pass", "length unknown", 200),
    ("/page.html", "GET", {"Range": "bytes=0-1"}, "pass", "predicate declined", 200),
    ("/media/clip.bin", "GET", {}, "full", "no range requested", 200),
    ("/media/clip.bin", "HEAD", {"Range": "bytes=0-1"}, "full", "no range requested", 200),
    ("/media/clip.bin", "GET", {"Range": "items=0-1"}, "full", "invalid or non-bytes Range",
     200),
    ("/media/clip.bin", "GET", {"Range": "bytes=0-1", "If-Range": '"v0"'}, "full",
     "If-Range does not match", 200),
    ("/media/clip.bin", "GET", {"Range": ",".join(["bytes=0-0"] + ["2-2"] * 5)}, "full",
     "too many ranges", 200),
    # Two parts covering all but one byte: the part headers make it larger than the whole.
    ("/media/clip.bin", "GET", {"Range": "bytes=0-24999,25001-"}, "full",
     "multipart larger than the representation", 200),
    ("/media/clip.bin", "GET", {"Range": "bytes=10-19"}, "partial", "one range", 206),
    ("/media/clip.bin", "GET", {"Range": "bytes=10-19", "If-Range": ETAG}, "partial",
     "one range", 206),
    ("/media/clip.bin", "GET", {"Range": "bytes=10-19,100-"}, "multipart", "2 ranges", 206),
    ("/media/clip.bin", "GET", {"Range": f"bytes={SIZE}-"}, "unsatisfiable",
     "no satisfiable range", 416),
], ids=lambda v: v if isinstance(v, str) and " " in v else None)
def test_each_decision_is_logged_at_debug(
        data_file: Path, data: bytes, caplog: pytest.LogCaptureFixture, path: str, method: str,
        headers: dict[str, str], kind: str, reason: str, status: int) -> None:
    caplog.set_level(logging.DEBUG, logger="rangewsgi")
    # max_multipart_excess=0 and max_ranges=5 make the refusal cases small to write.
    limits: dict[str, Any] = ({"max_multipart_excess": 0} if "larger" in reason
                              else {"max_ranges": 5})
    app = RangeMiddleware(make_app(data_file), predicate=by_content_type, **limits)
    resp = fetch(app, path, headers, method)
    assert resp.status_code == status
    # A pass for want of a length adds one WARNING (test_one_length_warning_per_route).
    records = [r for r in decision_records(caplog) if r.levelno == logging.DEBUG]
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    message = record.getMessage()
    assert f": {kind} ({reason})" in message
    assert message.startswith(f"{method} {path} ")
    # The bytes match the decision.
    body = resp.get_data()
    if kind == "partial":
        assert body == data[10:20]
    elif kind == "multipart":
        parts = parse_multipart(body, resp.headers["Content-Type"])
        assert [chunk for _, chunk in parts] == [data[10:20], data[100:]]
    elif kind == "full" and method == "GET":
        assert body == data
        assert resp.headers["Accept-Ranges"] == "bytes"
    elif kind == "pass":
        assert "Accept-Ranges" not in resp.headers


def test_nothing_logged_above_debug(data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rangewsgi")
    app = RangeMiddleware(make_app(data_file))
    for headers in ({}, {"Range": "bytes=0-1"}, {"Range": "bytes=0-1,9-9"},
                    {"Range": f"bytes={SIZE}-"}):
        fetch(app, "/media/clip.bin", headers)
    assert decision_records(caplog) == []


def test_other_methods_are_not_intercepted(data_file: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """RFC 9110 14.2: Range is defined for GET; a POST goes through without a decision."""
    caplog.set_level(logging.DEBUG, logger="rangewsgi")
    inner = make_app(data_file)
    app = RangeMiddleware(inner)
    got = fetch(app, "/media/clip.bin", {"Range": "bytes=0-1"}, "POST")
    same_response(got, fetch(inner, "/media/clip.bin", {"Range": "bytes=0-1"}, "POST"))
    assert decision_records(caplog) == []


# -- the WARNING for a media 200 that passes through for want of a length --

def flask_app(path: Path) -> Any:
    """``Response(open(path, "rb"))`` (no length: Werkzeug hides the file behind a
    generator), its fix ``send_file(..., conditional=False)``, and a text page."""

    app = Flask(__name__)

    @app.get("/video/<name>")
    def video(name: str) -> Response:
        return Response(open(path, "rb"), mimetype="video/mp4")

    @app.get("/sent/<name>")
    def sent(name: str) -> Response:
        return send_file(path, mimetype="video/mp4", conditional=False)

    @app.get("/page")
    def page() -> Response:
        return Response(iter([b"<p>", b"text", b"</p>"]), mimetype="text/html")

    return app.wsgi_app


def fetch_closed(app: Any, path: str, headers: dict[str, str] | None = None,
                 method: str = "GET", **environ: str) -> TestResponse:
    """``fetch``, read whole and closed as a server closes it (the file is closed)."""
    resp = Client(app).open(path, method=method, headers=headers or {},
                            environ_overrides=environ)
    resp.get_data()
    resp.close()
    return resp


def length_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "rangewsgi" and r.levelno == logging.WARNING]


def test_one_length_warning_per_route(data_file: Path, data: bytes,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rangewsgi")
    app = RangeMiddleware(flask_app(data_file))
    for headers in ({}, {"Range": "bytes=0-9"}, {"Range": "bytes=0-1,5-6"}, {}, {}):
        got = fetch_closed(app, "/video/a", headers)
        assert got.status_code == 200 and got.get_data() == data  # passed through, whole
        assert "Accept-Ranges" not in got.headers
    assert fetch_closed(app, "/video/a", method="HEAD").status_code == 200
    warnings = length_warnings(caplog)
    assert len(warnings) == 1, warnings
    # It names the route, the content type and the fix.
    assert warnings[0].startswith("route '/video/a': a 200 of video/mp4 passes through")
    assert "give the response a Content-Length" in warnings[0]
    assert "send_file(path, conditional=False)" in warnings[0]
    assert "wsgi.file_wrapper" in warnings[0]
    fetch_closed(app, "/video/b", {"Range": "bytes=0-9"})
    fetch_closed(app, "/video/b")
    fetch_closed(app, "/video/a")
    assert len(length_warnings(caplog)) == 2
    assert length_warnings(caplog)[1].startswith("route '/video/b': ")
    # The same path under another mount point (SCRIPT_NAME) is another route.
    fetch_closed(app, "/video/a", SCRIPT_NAME="/mounted")
    assert len(length_warnings(caplog)) == 3
    assert length_warnings(caplog)[2].startswith("route '/mounted/video/a': ")


def test_no_length_warning_for_ranged_media_or_text(data_file: Path, data: bytes,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rangewsgi")
    app = RangeMiddleware(flask_app(data_file))
    whole = fetch_closed(app, "/sent/a")
    assert whole.get_data() == data and whole.headers["Accept-Ranges"] == "bytes"
    part = fetch_closed(app, "/sent/a", {"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.get_data() == data[10:20]
    page = fetch_closed(app, "/page", {"Range": "bytes=0-1"})
    assert page.status_code == 200 and page.get_data() == b"<p>text</p>"
    assert fetch_closed(app, "/nowhere").status_code == 404
    assert length_warnings(caplog) == []
    assert [r.getMessage().split(": ")[-1] for r in decision_records(caplog)] == [
        "full (no range requested)", "partial (one range)", "pass (length unknown)",
        "pass (not a rangeable 200)"]


def test_length_warnings_remember_a_bounded_number_of_routes(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rangewsgi")

    def stream(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "audio/mpeg")])
        yield b"ID3"

    app = RangeMiddleware(stream)
    limit = app.length_warnings.limit
    for number in range(limit + 20):
        assert fetch_closed(app, f"/track/{number}").get_data() == b"ID3"
    warnings = length_warnings(caplog)
    assert len(warnings) == limit
    assert warnings[-1].endswith(f"This is the last route reported ({limit} so far).")
    fetch_closed(app, "/track/0")
    assert len(length_warnings(caplog)) == limit


@pytest.mark.parametrize(("headers", "media"), [
    ([("Content-Type", "video/mp4")], "video/mp4"),
    ([("content-type", "Audio/MPEG; rate=44100")], "Audio/MPEG; rate=44100"),
    ([("Content-Type", "application/octet-stream")], "application/octet-stream"),
    ([("Content-Type", "application/zip")], "application/zip"),
    ([("Content-Type", "application/pdf")], "application/pdf"),
    ([("Content-Type", "video/webm"), ("Content-Encoding", "identity")], "video/webm"),
    ([("Content-Type", "video/webm"), ("Content-Encoding", "gzip")], None),
    ([("Content-Type", "text/html; charset=utf-8")], None),
    ([("Content-Type", "image/png")], None),
    ([("Content-Type", "application/json")], None),
    ([], None),
])
def test_ranged_media_types(headers: list[tuple[str, str]], media: str | None) -> None:
    assert ranged_media_type(headers) == media


def crashing_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """An error handler's answer: the first start_response call carries exc_info (PEP 3333)."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        start_response("500 Internal Server Error",
                       [("Content-Type", "text/plain"), ("Content-Length", "4")], sys.exc_info())
    return [b"oops"]


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=0-1"}], ids=["plain", "range"])
def test_error_response_passes_through(caplog: pytest.LogCaptureFixture,
                                       headers: dict[str, str]) -> None:
    caplog.set_level(logging.DEBUG, logger="rangewsgi")
    resp = fetch(RangeMiddleware(crashing_app), "/", headers)
    assert resp.status_code == 500
    assert resp.get_data() == b"oops"
    assert "Accept-Ranges" not in resp.headers
    assert [r.getMessage().endswith(": pass (error response)")
            for r in decision_records(caplog)] == [True]


# -- options --

@pytest.mark.parametrize(("options", "message"), [
    ({"max_ranges": 0}, "max_ranges must be at least 1"),
    ({"max_multipart_excess": -1}, "max_multipart_excess must not be negative"),
    ({"block_size": 0}, "block_size must be positive"),
])
def test_invalid_option_values(data_file: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RangeMiddleware(make_app(data_file), **options)


def test_block_size_and_file_wrapper_options_keep_bytes(data_file: Path, data: bytes) -> None:
    """Odd block sizes and the non-zero-copy path still give the exact slices."""
    for use_file_wrapper in (True, False):
        for block_size in (1, 7, 65536):
            app = RangeMiddleware(make_app(data_file), use_file_wrapper=use_file_wrapper,
                                  block_size=block_size)
            one = fetch(app, "/media/clip.bin", {"Range": "bytes=33-90"})
            assert one.get_data() == data[33:91]
            two = fetch(app, "/media/clip.bin", {"Range": "bytes=-3,4-8"})
            parts = parse_multipart(two.get_data(), two.headers["Content-Type"])
            assert [chunk for _, chunk in parts] == [data[-3:], data[4:9]]


@pytest.mark.parametrize("text", ["+5", "1_000", "\u00b2", "0x10", "1e3", "", " ", "-1", "5.0"])
def test_ini_integers_are_strict(text: str) -> None:
    with pytest.raises(ConfigError, match="must be a whole number"):
        parse_int("max_ranges", text)


@pytest.mark.parametrize(("text", "value"), [("10", 10), (" 007 ", 7), ("0", 0)])
def test_ini_integers(text: str, value: int) -> None:
    assert parse_int("block_size", text) == value


@pytest.mark.parametrize("text", ["yes", "no", "1", "0", "on", "off", "", "truthy"])
def test_ini_booleans_are_strict(text: str) -> None:
    with pytest.raises(ConfigError, match="must be true or false"):
        parse_bool("use_file_wrapper", text)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("FALSE", False), (" True ", True)])
def test_ini_booleans(text: str, value: bool) -> None:
    assert parse_bool("use_file_wrapper", text) is value


@pytest.mark.parametrize(("conf", "message"), [
    ({"max_range": "5"}, "unknown option 'max_range': did you mean 'max_ranges'?"),
    ({"predicate": "os.path.isfile"}, "must look like 'package.module:callable'"),
    ({"predicate": "no_such_module_here:f"}, "cannot import 'no_such_module_here'"),
    ({"predicate": "os.path:no_such_function"}, "has no attribute"),
    ({"predicate": "os:sep"}, "is not callable"),
    ({"block_size": "0"}, "block_size must be positive"),
])
def test_filter_factory_errors(data_file: Path, conf: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        filter_app_factory(make_app(data_file), {}, **conf)
    assert message in str(info.value)


def test_filter_factory_typed_options(data_file: Path) -> None:
    app = filter_app_factory(make_app(data_file), {"max_ranges": "1"}, max_ranges="7",
                             predicate="test_logging_options:by_size", block_size="512",
                             use_file_wrapper="false", max_multipart_excess="0")
    assert app.limits.max_ranges == 7  # the [DEFAULT] section does not configure the filter
    assert app.limits.max_multipart_excess == 0
    assert app.predicate is by_size
    assert app.block_size == 512
    assert app.use_file_wrapper is False
    defaults = filter_app_factory(make_app(data_file), {}, predicate="")
    assert defaults.limits.max_ranges == 100
    assert defaults.predicate is None
    assert defaults.use_file_wrapper is True
