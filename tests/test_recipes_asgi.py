"""The ASGI recipes of examples/recipes/ (Django, FastAPI, Litestar, Quart), as users run them.

Each recipe serves ``$RANGEWSGI_EXAMPLE_FILE`` at ``/video`` through its framework's own file
response, wrapped in ``rangewsgi.asgi.RangeMiddleware`` the way that framework takes
middleware, and runs here under uvicorn on a free 127.0.0.1 port (stopped by PID). Every
answer is compared with the file, byte for byte: validators on the 200 (RFC 9110 8.8), ``304``
on revalidation (13.1.2, 13.1.3), single, suffix, open-ended and multiple ranges (14.1.2,
14.6), ``If-Range`` (13.1.5), ``HEAD`` with ``Range`` answered ``200`` without content (14.2),
and ``416`` (15.5.17). The Litestar recipe is also started by ``litestar run``.

Django: ``rangewsgi.django_asgi`` sends a ``FileResponse`` as a path-send, which gives it the
validators the middleware makes from the file; the same view behind Django's own
``get_asgi_application()`` gets none. Its other promises (Django's fields and cookies
unchanged, the response closed once, files Django must stream left to Django) are checked
in a Python process of its own, Django's settings being global.

docs/asgi.md shows each recipe file exactly as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markdown_blocks import fenced_blocks
from recipes_asgi_support import (
    DJANGO_PLAIN,
    RECIPES,
    RECIPES_DIR,
    multipart_parts,
    run_django_checks,
    serve,
    serve_litestar_cli,
)
from server_configs.launch import write_data
from support import ROOT, RawClient, RawResponse, free_port

pytestmark = pytest.mark.network

SIZE = 3 * (1 << 20) + 12_345  # a few MiB, not a multiple of any block size
ASGI_MD = ROOT / "docs" / "asgi.md"


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    return write_data(tmp_path_factory.mktemp("recipes-asgi"), SIZE, "video.mp4")


@pytest.fixture(scope="module", params=sorted(RECIPES))
def port(request: pytest.FixtureRequest, data_file: tuple[Path, bytes],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    server = serve(RECIPES[request.param], free_port(), data_file[0],
                   tmp_path_factory.mktemp(request.param))
    try:
        yield server.port
    finally:
        server.stop()


def get(port: int, headers: dict[str, str] | None = None, method: str = "GET") -> RawResponse:
    with RawClient(port) as client:
        return client.request("/video", headers, method)


def validator(resp: RawResponse) -> tuple[str, str]:
    """The field a client revalidates with: a strong ETag, else the Last-Modified date."""
    etag = resp.header("ETag")
    if etag is not None and not etag.startswith("W/"):
        return "ETag", etag
    modified = resp.header("Last-Modified")
    assert modified is not None, f"neither a strong ETag nor a Last-Modified: {resp.headers}"
    return "Last-Modified", modified


def check_206(resp: RawResponse, data: bytes, first: int, last: int) -> None:
    assert resp.status == 206, (resp.status, resp.headers)
    assert resp.header("Content-Range") == f"bytes {first}-{last}/{len(data)}"
    assert resp.header("Content-Length") == str(last - first + 1)
    assert resp.body == data[first:last + 1]


# --- every recipe ------------------------------------------------------------------------------

def test_get_is_the_file_with_validators(port: int, data_file: tuple[Path, bytes]) -> None:
    resp = get(port)
    assert resp.status == 200, (resp.status, resp.headers)
    assert resp.body == data_file[1]
    assert resp.header("Content-Length") == str(SIZE)
    assert resp.header("Accept-Ranges") == "bytes"
    assert resp.header("Content-Type") == "video/mp4"
    validator(resp)


def test_revalidation_is_304(port: int) -> None:
    first = get(port)
    etag, modified = first.header("ETag"), first.header("Last-Modified")
    asked = []
    if etag is not None:  # RFC 9110 13.1.2: weak comparison, a match is a 304
        asked.append({"If-None-Match": etag})
    if modified is not None:  # RFC 9110 13.1.3 (evaluated only without If-None-Match)
        asked.append({"If-Modified-Since": modified})
    assert asked, first.headers
    for headers in asked:
        resp = get(port, headers)
        assert resp.status == 304, (headers, resp.status, resp.headers)
        assert resp.body == b""
        if etag is not None:
            assert resp.header("ETag") == etag  # RFC 9110 15.4.5


def test_single_suffix_and_open_ranges(port: int, data_file: tuple[Path, bytes]) -> None:
    data = data_file[1]
    with RawClient(port) as client:  # one keep-alive connection
        check_206(client.request("/video", {"Range": "bytes=1000-70999"}), data, 1000, 70999)
        check_206(client.request("/video", {"Range": "bytes=-100"}), data, SIZE - 100, SIZE - 1)
        check_206(client.request("/video", {"Range": "bytes=2000000-"}), data, 2000000,
                  SIZE - 1)
        check_206(client.request("/video", {"Range": "bytes=0-0"}), data, 0, 0)
        client.assert_idle()


def test_multiple_ranges_are_multipart(port: int, data_file: tuple[Path, bytes]) -> None:
    data = data_file[1]
    spans = [(0, 9), (70000, 140000), (SIZE - 5, SIZE - 1)]
    resp = get(port, {"Range": "bytes=0-9,70000-140000,-5"})
    assert resp.status == 206, (resp.status, resp.headers)
    assert resp.header("Content-Range") is None
    assert resp.header("Content-Length") == str(len(resp.body))
    parts = multipart_parts(resp.body, resp.header("Content-Type") or "")
    assert len(parts) == len(spans)
    for (fields, body), (first, last) in zip(parts, spans, strict=True):
        assert fields["content-range"] == f"bytes {first}-{last}/{SIZE}"
        assert fields["content-type"] == "video/mp4"
        assert body == data[first:last + 1]


def test_if_range(port: int, data_file: tuple[Path, bytes]) -> None:
    data = data_file[1]
    _name, current = validator(get(port))
    matching = get(port, {"Range": "bytes=-100", "If-Range": current})
    check_206(matching, data, SIZE - 100, SIZE - 1)
    for stale in ('"another-version"', "Tue, 14 Nov 2000 22:13:20 GMT"):
        # RFC 9110 13.1.5: no match, the Range is ignored: the whole file as a 200.
        resp = get(port, {"Range": "bytes=-100", "If-Range": stale})
        assert resp.status == 200, (stale, resp.status, resp.headers)
        assert resp.header("Content-Range") is None
        assert resp.body == data


def test_head_with_range_is_200_without_content(port: int,
                                                data_file: tuple[Path, bytes]) -> None:
    with RawClient(port) as client:
        head = client.request("/video", {"Range": "bytes=0-9"}, method="HEAD")
        assert head.status == 200, (head.status, head.headers)  # RFC 9110 14.2: GET only
        assert head.header("Content-Length") == str(SIZE)
        assert head.header("Content-Range") is None
        client.assert_idle()  # no content after the header section (RFC 9110 9.3.2)
        after = client.request("/video", {"Range": "bytes=5-9"})
        check_206(after, data_file[1], 5, 9)


def test_unsatisfiable_range_is_416(port: int) -> None:
    resp = get(port, {"Range": f"bytes={SIZE}-"})
    assert resp.status == 416, (resp.status, resp.headers)
    assert resp.header("Content-Range") == f"bytes */{SIZE}"
    assert len(resp.body) == int(resp.header("Content-Length") or 0)


# --- Litestar's own command --------------------------------------------------------------------

def test_litestar_run_serves_the_recipe(data_file: tuple[Path, bytes], tmp_path: Path) -> None:
    server = serve_litestar_cli(free_port(), data_file[0], tmp_path)
    try:
        with RawClient(server.port) as client:
            whole = client.request("/video")
            assert whole.status == 200 and whole.body == data_file[1]
            validator(whole)
            check_206(client.request("/video", {"Range": "bytes=-100"}), data_file[1],
                      SIZE - 100, SIZE - 1)
    finally:
        server.stop()


# --- Django: what the integration adds, and what it leaves as Django does ----------------------

def test_django_file_response_needs_the_integration_for_validators(
        data_file: tuple[Path, bytes], tmp_path: Path) -> None:
    """Behind Django's own ASGI handler the FileResponse is a stream: the middleware can slice
    it, but has nothing to make an ETag or Last-Modified from; sent as a path it has both."""
    answers = {}
    for name, recipe in (("plain", DJANGO_PLAIN), ("integrated", RECIPES["django"])):
        server = serve(recipe, free_port(), data_file[0], tmp_path)
        try:
            answers[name] = (get(server.port), get(server.port, {"Range": "bytes=-100"}))
        finally:
            server.stop()
    for whole, tail in answers.values():  # ranges are right either way
        assert whole.body == data_file[1]
        check_206(tail, data_file[1], SIZE - 100, SIZE - 1)
    plain, integrated = answers["plain"][0], answers["integrated"][0]
    assert plain.header("ETag") is None and plain.header("Last-Modified") is None
    assert integrated.header("ETag") is not None
    assert integrated.header("Last-Modified") is not None


@pytest.fixture(scope="module")
def django_facts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("django")
    path, _data = write_data(tmp_path_factory.mktemp("django-facts"), 300_001, "video.mp4")
    return run_django_checks(path)


@pytest.mark.parametrize("route", ["video", "cookie"])
def test_django_fields_and_close_are_djangos(django_facts: dict[str, Any], route: str) -> None:
    """Path-send changes the body messages only: the status, the fields and cookies (names,
    order, case), request_finished (sent once) and the file's close are Django's."""
    cases = django_facts["cases"]
    reference = cases[f"plain-{route}-True"]
    sent = cases[f"integrated-{route}-True"]
    assert sent["types"] == ["http.response.pathsend", "http.response.start"]
    assert len(sent["paths"]) == 1 and Path(sent["paths"][0]).is_absolute()
    for key in ("status", "headers", "finished", "closed"):
        assert sent[key] == reference[key], key
    assert sent["finished"] == 1 and sent["closed"] is True
    # Without the extension in the scope, Django's own code answers, body and all.
    assert cases[f"integrated-{route}-False"] == cases[f"plain-{route}-False"]


def test_django_leaves_what_it_must_stream(django_facts: dict[str, Any]) -> None:
    """Only the whole of a regular file, open in binary mode, whose name is that very file."""
    targets = django_facts["targets"]
    assert targets.pop("whole") == targets.pop("relative")
    assert targets == {"offset": None, "text": None, "bytesio": None, "compressed": None,
                       "replaced": None, "pipe": None}


# --- docs/asgi.md shows the files ---------------------------------------------------------------

def test_asgi_md_shows_every_recipe_exactly() -> None:
    shown = {}
    for block in fenced_blocks(ASGI_MD.read_text(encoding="utf-8")):
        links = [part.split(")")[0] for part in block.before.split("](../examples/recipes/")[1:]]
        if block.lang == "python" and links:
            shown[links[-1]] = block.text
    for recipe in RECIPES.values():
        assert shown.get(recipe.file) == (RECIPES_DIR / recipe.file).read_text(
            encoding="utf-8"), f"docs/asgi.md does not show examples/recipes/{recipe.file} as it is"
        assert recipe.target in shown[recipe.file], "its docstring says how to run it"
