"""The PasteDeploy filter: ``[filter:range] use = egg:rangewsgi`` in a real ini file.

``paste.deploy.loadapp`` finds the filter through the installed ``paste.filter_app_factory``
entry point, so these tests also prove the packaging metadata of the installed project. The
ini values are strings; the limits they set (RFC 9110 section 17.15: ignore egregious range
requests) must reach the middleware as the numbers written.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from paste.deploy import loadapp
from support import RawClient, Server, free_port, parse_multipart, start_server
from werkzeug.test import Client

from rangewsgi import RangeMiddleware
from rangewsgi.paste import ConfigError

HERE = Path(__file__).resolve().parent
SIZE = 300_007  # not a multiple of any block size
BLOCK = 8192

FILTER_INI = """\
[app:files]
use = call:test_paste:make_file_app
path = %(here)s/data.bin

[filter:range]
use = egg:rangewsgi
{options}

[pipeline:main]
pipeline = range files
"""


# -- the application the ini file names (an app_factory, as PasteDeploy calls it) --

def make_file_app(global_conf: dict[str, str], path: str) -> Any:
    """A range-unaware app: ``/file`` through ``wsgi.file_wrapper``, ``/list`` from memory."""
    data_path = Path(path)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        size = data_path.stat().st_size
        headers = [("Content-Type", "application/octet-stream"),
                   ("Content-Length", str(size)), ("ETag", '"paste-test"')]
        route = environ.get("PATH_INFO", "")
        if route == "/file":
            start_response("200 OK", headers)
            wrapper = environ.get("wsgi.file_wrapper")
            handle = open(data_path, "rb")  # noqa: SIM115 - closed through the body
            if wrapper is not None:
                return wrapper(handle, BLOCK)  # type: ignore[no-any-return]
            return _read(handle)
        if route == "/list":
            data = data_path.read_bytes()
            start_response("200 OK", headers)
            return [data[i:i + BLOCK] for i in range(0, size, BLOCK)]
        if route == "/page":
            page = b"<!doctype html><p>not ranged</p>"
            start_response("200 OK", [("Content-Type", "text/html"),
                                      ("Content-Length", str(len(page)))])
            return [page]
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "9")])
        return [b"not found"]

    return app


def _read(handle: Any) -> Iterator[bytes]:
    with handle:
        while block := handle.read(BLOCK):
            yield block


def only_octets(environ: dict[str, Any], headers: list[tuple[str, str]], length: int) -> bool:
    """A predicate named from the ini file: range only binary downloads."""
    return any(k.lower() == "content-type" and v == "application/octet-stream"
               for k, v in headers)


# -- helpers --

@pytest.fixture(scope="module")
def data() -> bytes:
    return random.Random(20260101).randbytes(SIZE)


def write_ini(directory: Path, data: bytes, options: str = "max_ranges = 10") -> Path:
    (directory / "data.bin").write_bytes(data)
    ini = directory / "app.ini"
    ini.write_text(FILTER_INI.format(options=options))
    return ini


@pytest.fixture
def load(tmp_path: Path, data: bytes, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``load(options)`` writes the ini file and returns ``loadapp("config:...")``."""
    monkeypatch.syspath_prepend(str(HERE))  # the ini names test_paste:make_file_app

    def loader(options: str = "max_ranges = 10") -> Any:
        ini = write_ini(tmp_path, data, options)
        return loadapp(f"config:{ini}")

    return loader


def spec_list(ranges: list[tuple[int, int]]) -> str:
    return "bytes=" + ",".join(f"{a}-{b}" for a, b in ranges)


def disjoint_ranges(count: int) -> list[tuple[int, int]]:
    """``count`` small non-adjacent ranges (nothing coalesces), in descending order."""
    return [(1000 * i + 7, 1000 * i + 106) for i in range(count, 0, -1)]


def check_multipart(body: bytes, content_type: str, data: bytes,
                    ranges: list[tuple[int, int]]) -> None:
    parts = parse_multipart(body, content_type)
    assert len(parts) == len(ranges)
    for (fields, chunk), (first, last) in zip(parts, ranges, strict=True):
        assert fields["content-range"] == f"bytes {first}-{last}/{len(data)}"
        assert fields["content-type"] == "application/octet-stream"
        assert chunk == data[first:last + 1]


# -- loadapp in process --

def test_loadapp_builds_the_middleware_from_the_ini(load: Any) -> None:
    app = load("max_ranges = 10\nmax_multipart_excess = 123\nuse_file_wrapper = false\n"
               "block_size = 4096")
    assert isinstance(app, RangeMiddleware)
    assert app.limits.max_ranges == 10
    assert app.limits.max_multipart_excess == 123
    assert app.use_file_wrapper is False
    assert app.block_size == 4096
    assert app.predicate is None


@pytest.mark.parametrize("route", ["/file", "/list"])
def test_single_range_through_loaded_app(load: Any, data: bytes, route: str) -> None:
    client = Client(load())
    resp = client.get(route, headers={"Range": "bytes=1000-70999"})
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes 1000-70999/{SIZE}"
    assert resp.get_data() == data[1000:71000]
    suffix = client.get(route, headers={"Range": "bytes=-5"})
    assert suffix.status_code == 206
    assert suffix.get_data() == data[-5:]


@pytest.mark.parametrize("route", ["/file", "/list"])
def test_ten_ranges_are_served_as_multipart(load: Any, data: bytes, route: str) -> None:
    ranges = disjoint_ranges(10)
    resp = Client(load()).get(route, headers={"Range": spec_list(ranges)})
    assert resp.status_code == 206
    assert resp.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert int(resp.headers["Content-Length"]) == len(resp.get_data())
    # A stream cannot go back: its parts come in ascending order; a file keeps request order.
    expected = ranges if route == "/file" else sorted(ranges)
    check_multipart(resp.get_data(), resp.headers["Content-Type"], data, expected)


@pytest.mark.parametrize("route", ["/file", "/list"])
def test_eleven_ranges_exceed_the_ini_limit(load: Any, data: bytes, route: str) -> None:
    resp = Client(load()).get(route, headers={"Range": spec_list(disjoint_ranges(11))})
    assert resp.status_code == 200
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.get_data() == data


def test_without_the_option_the_default_limit_applies(load: Any, data: bytes) -> None:
    """The 200 above comes from ``max_ranges = 10``: with no option, 11 ranges are served."""
    ranges = disjoint_ranges(11)
    resp = Client(load("")).get("/file", headers={"Range": spec_list(ranges)})
    assert resp.status_code == 206
    check_multipart(resp.get_data(), resp.headers["Content-Type"], data, ranges)


def test_content_validators_named_in_the_ini(load: Any) -> None:
    app = load("file_validators = Content\nconditional = FALSE")
    assert app.options.file_validators == "content"
    assert app.options.conditional is False
    assert app.options.max_ranges == 100  # left out: the default of rangewsgi.options


def test_predicate_named_in_the_ini(load: Any, data: bytes) -> None:
    client = Client(load("predicate = test_paste:only_octets"))
    page = client.get("/page", headers={"Range": "bytes=0-3"})
    assert page.status_code == 200
    assert "Accept-Ranges" not in page.headers
    assert page.get_data() == b"<!doctype html><p>not ranged</p>"
    binary = client.get("/file", headers={"Range": "bytes=0-3"})
    assert binary.status_code == 206
    assert binary.get_data() == data[:4]


@pytest.mark.parametrize(("options", "message"), [
    ("max_range = 10", "unknown option 'max_range': did you mean 'max_ranges'?"),
    ("gzip = true", "unknown option 'gzip'; the options are max_ranges, "),
    ("file_validators = yes", "file_validators must be true, false or content"),
    ("max_ranges = ten", "max_ranges must be a whole number"),
    ("max_ranges = 0", "max_ranges must be at least 1"),
    ("use_file_wrapper = yes", "use_file_wrapper must be true or false"),
    ("predicate = test_paste.only_octets", "predicate must look like"),
    ("predicate = test_paste:no_such_thing", "has no attribute"),
])
def test_bad_ini_options_fail_to_load(load: Any, options: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(options)
    assert message in str(info.value)


# -- a real server loading the ini: gunicorn --paste --

@pytest.fixture
def gunicorn_paste(tmp_path: Path, data: bytes) -> Iterator[Server]:
    ini = write_ini(tmp_path, data)
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "gunicorn", "--paste", str(ini), "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--worker-class", "gthread", "--threads", "2",  # keep-alive
         "--log-level", "warning"],
        port, cwd=tmp_path, log_path=tmp_path / "gunicorn.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.network
def test_gunicorn_paste_pipeline(gunicorn_paste: Server, data: bytes) -> None:
    with RawClient(gunicorn_paste.port) as client:
        # One range of a file body: gunicorn's file wrapper (sendfile from the range start).
        one = client.request("/file", {"Range": "bytes=123456-223455"})
        assert one.status == 206
        assert one.header("Content-Range") == f"bytes 123456-223455/{SIZE}"
        assert one.body == data[123456:223456]
        ten = disjoint_ranges(10)
        multi = client.request("/file", {"Range": spec_list(ten)})
        assert multi.status == 206
        check_multipart(multi.body, multi.header("Content-Type") or "", data, ten)
        over = client.request("/file", {"Range": spec_list(disjoint_ranges(11))})
        assert over.status == 200
        assert over.body == data
        client.assert_idle()
    assert "Traceback" not in gunicorn_paste.log()
