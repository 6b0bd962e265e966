"""The recipes as users paste them: docs/recipes.md, examples/recipes/ and README.md.

- Every ``python`` and ``ini`` block of docs/recipes.md is a file of examples/recipes/, shown
  exactly as it is (the link just before the block names the file), and every file there is
  shown: the page and the code cannot drift apart.
- Every recipe runs as written under a real server (gunicorn with the gthread worker; Pyramid's
  ini under waitress through ``pserve``; Bottle under waitress too) on a free 127.0.0.1 port,
  serving a file named by ``$RANGEWSGI_EXAMPLE_FILE``. Over one keep-alive connection each
  route gets a plain GET, a single range, an open-ended range, several ranges, a ``416``, a
  revalidation ``304`` (``If-None-Match`` with the ETag the 200 carried, or
  ``If-Modified-Since`` with its Last-Modified when it carries no ETag) and a resumed download
  (``If-Range``); every body is compared with the file, byte for byte.
- The DEBUG lines shown in docs/recipes.md are the lines the logging recipe's server writes
  for the requests they name.
- README.md: every ``python`` block not preceded by ``<!-- fragment -->`` is a complete
  recipe. One that defines ``app`` or ``application`` is served by gunicorn over the file in
  ``$RANGEWSGI_EXAMPLE_FILE`` and checked like the recipes above (on the first route among
  its string literals that serves the file, else ``/``); one that defines neither must import.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_blocks import FRAGMENT, Block, fenced_blocks, is_fragment
from server_configs.checks import check_416, check_multi, check_single, from_werkzeug
from server_configs.launch import MTIME, gunicorn_cmd, make_data
from support import ROOT, RawClient, RawResponse, Server, free_port, start_server

pytestmark = pytest.mark.network

RECIPES_DIR = ROOT / "examples" / "recipes"
RECIPES_MD = ROOT / "docs" / "recipes.md"
README = ROOT / "README.md"
FILE_ENV = "RANGEWSGI_EXAMPLE_FILE"
SIZE = 200_003  # not a multiple of any block size
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Recipe:
    """How a recipe is served, and the routes that serve the file."""

    target: str  # module:attribute for gunicorn and waitress-serve
    routes: tuple[str, ...]
    servers: tuple[str, ...] = ("gunicorn",)
    content_type: str = "video/mp4"


RECIPES: dict[str, Recipe] = {
    "flask_app.py": Recipe("flask_app:app", ("/video", "/media/video.mp4", "/stream")),
    "django_app.py": Recipe("django_app:application", ("/video",)),
    "bottle_app.py": Recipe("bottle_app:application", ("/video",), ("gunicorn", "waitress")),
    "pyramid_app.py": Recipe("pyramid_app:main", ("/video",), ("pserve",)),
    "falcon_app.py": Recipe("falcon_app:application", ("/video",)),
    "plain_wsgi.py": Recipe("plain_wsgi:application", ("/video",)),
    "media_only.py": Recipe("media_only:application", ("/video",)),
    "who_answered.py": Recipe("who_answered:app", ("/video",)),
}
# Files that are not run on their own: the ini is what pserve runs for pyramid_app.py.
COMPANIONS = {"pyramid.ini": "pyramid_app.py"}


# --- Markdown -----------------------------------------------------------------------------------

_FILE_LINK = re.compile(r"\]\(\.\./examples/recipes/([^)#\s]+)\)")


def shown_file(block: Block) -> str | None:
    """The examples/recipes/ file named by the last link before ``block``, if any."""
    names = _FILE_LINK.findall(block.before)
    return names[-1] if names else None


# The ASGI recipes: shown in docs/asgi.md, served by tests/test_recipes_asgi.py.
ASGI_RECIPES = frozenset({"django_asgi.py", "fastapi_app.py", "litestar_app.py", "quart_app.py"})


def recipe_files() -> list[str]:
    return sorted(p.name for p in RECIPES_DIR.iterdir()
                  if p.suffix in (".py", ".ini") and p.name not in ASGI_RECIPES)


def test_recipes_md_shows_every_file_exactly() -> None:
    shown: list[str] = []
    for block in fenced_blocks(RECIPES_MD.read_text(encoding="utf-8")):
        if block.lang not in ("python", "ini"):
            continue
        name = shown_file(block)
        assert name is not None, (
            f"docs/recipes.md:{block.line}: a {block.lang} block without a link to the "
            "examples/recipes/ file it shows just before it")
        path = RECIPES_DIR / name
        assert path.is_file(), f"docs/recipes.md:{block.line}: {name} does not exist"
        assert block.text == path.read_text(encoding="utf-8"), (
            f"docs/recipes.md:{block.line} differs from examples/recipes/{name}: copy the file "
            "into the page (or the page's change into the file)")
        shown.append(name)
    assert sorted(shown) == recipe_files(), "each recipe file is shown once in docs/recipes.md"


def test_every_recipe_is_run() -> None:
    """A new file in examples/recipes/ needs a row in RECIPES (or COMPANIONS) to be tested."""
    assert sorted([*RECIPES, *COMPANIONS]) == recipe_files()
    for name, recipe in RECIPES.items():
        source = (RECIPES_DIR / name).read_text(encoding="utf-8")
        # The run command in the recipe's docstring names what the test serves.
        assert recipe.target in source or "pserve" in recipe.servers, name
        assert "Run:" in source, f"{name}: its docstring says how to run it"


def test_fenced_blocks_and_fragments() -> None:
    sample = ("# Title\n\n```python\nimport os\n```\n\n<!-- fragment -->\n```python\n"
              "app = RangeMiddleware(app)\n```\n\n- item\n\n  ```python\n  x = 1\n  ```\n")
    blocks = fenced_blocks(sample)
    assert [(b.lang, b.text, is_fragment(b)) for b in blocks] == [
        ("python", "import os\n", False), ("python", "app = RangeMiddleware(app)\n", True),
        ("python", "x = 1\n", False)]


# --- serving ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The file every recipe serves: video.mp4, modified long ago (a strong Last-Modified)."""
    path = tmp_path_factory.mktemp("recipes") / "video.mp4"
    data = make_data(SIZE)
    path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))
    return path, data


def serve(server: str, target: str, cwd: Path, media_file: Path, log: Path) -> Server:
    """Start ``target`` (module:attribute, found in ``cwd``) under ``server``."""
    port = free_port()
    env = {FILE_ENV: str(media_file), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)])}
    if server == "gunicorn":
        cmd = gunicorn_cmd(port, "gthread", target, ["--chdir", str(cwd)])
    elif server == "waitress":
        cmd = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", target]
    elif server == "pserve":
        cmd = [sys.executable, "-m", "pyramid.scripts.pserve", "pyramid.ini",
               f"http_port={port}"]
    else:
        raise ValueError(server)
    return start_server(cmd, port, env=env, cwd=cwd, log_path=log, timeout=START_TIMEOUT)


@dataclass
class Served:
    server: Server
    data: bytes


@pytest.fixture
def running(request: pytest.FixtureRequest, media: tuple[Path, bytes],
            tmp_path: Path) -> Iterator[Served]:
    name, server_name = request.param
    if server_name == "pserve":
        from importlib.metadata import entry_points

        if not entry_points(group="paste.filter_app_factory", name="main"):
            reason = "egg:rangewsgi needs the package installed (pip install -e .)"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
    server = serve(server_name, RECIPES[name].target, RECIPES_DIR, media[0],
                   tmp_path / "server.log")
    try:
        yield Served(server, media[1])
    finally:
        server.stop()


class Connection:
    """Requests over one keep-alive connection, reopened only where the server closed it
    (waitress closes after every ``304``, observed with waitress 3.0.2)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.client = RawClient(port)

    def request(self, route: str, headers: dict[str, str] | None = None,
                method: str = "GET") -> RawResponse:
        resp = self.client.request(route, headers or {}, method)
        if (resp.header("Connection") or "").lower() == "close":
            self.client.close()
            self.client = RawClient(self.port)
        return resp

    def close(self) -> None:
        self.client.assert_idle(0.1)  # nothing sent beyond the responses: no overrun
        self.client.close()


def check_route(port: int, route: str, data: bytes, content_type: str) -> None:
    """The requests a player, a download manager and a browser cache send, byte for byte."""
    n = len(data)
    client = Connection(port)
    full = client.request(route)
    assert full.status == 200, (route, full.status, full.headers, full.body[:200])
    assert full.body == data
    assert full.header("Accept-Ranges") == "bytes"  # RFC 9110 14.3
    assert (full.header("Content-Type") or "").startswith(content_type)
    check_single(client.request(route, {"Range": "bytes=100-199"}), data, 100, 199)
    check_single(client.request(route, {"Range": "bytes=150000-"}), data, 150_000, n - 1)
    check_multi(client.request(route, {"Range": "bytes=0-9, 70000-140000,-5"}), data,
                [(0, 9), (70_000, 140_000), (n - 5, n - 1)], content_type)
    check_416(client.request(route, {"Range": f"bytes={n}-"}), data)  # 15.5.17
    # Revalidation (13.1.2, 13.1.3): the validator the 200 carried gets a 304, no content.
    etag, modified = full.header("ETag"), full.header("Last-Modified")
    assert etag is not None or modified is not None, full.headers
    revalidate = {"If-None-Match": etag} if etag else {"If-Modified-Since": str(modified)}
    again = client.request(route, revalidate)
    assert (again.status, again.body) == (304, b""), (again.status, again.headers)
    if etag:
        assert etag.startswith('"'), etag  # strong: If-Range can hold (13.1.5)
        assert again.header("ETag") == etag
    # Resuming a download (13.1.5): the rest of the file, or all of it if it changed.
    validator = etag or str(modified)
    check_single(client.request(route, {"Range": "bytes=123456-", "If-Range": validator}),
                 data, 123_456, n - 1)
    stale = client.request(route, {"Range": "bytes=123456-", "If-Range": '"stale"'})
    assert (stale.status, stale.body) == (200, data)
    client.close()


SERVED = [(name, server) for name, recipe in RECIPES.items() for server in recipe.servers]


@pytest.mark.parametrize("running", SERVED, ids=[f"{n}-{s}" for n, s in SERVED],
                         indirect=True)
def test_recipe_over_server(running: Served, request: pytest.FixtureRequest) -> None:
    name = request.node.callspec.params["running"][0]
    recipe = RECIPES[name]
    for route in recipe.routes:
        check_route(running.server.port, route, running.data, recipe.content_type)


@pytest.mark.parametrize("running", [("media_only.py", "gunicorn")], indirect=True)
def test_predicate_leaves_pages_alone(running: Served) -> None:
    """A page the predicate declines: the app's 200 byte for byte, no Accept-Ranges."""
    with RawClient(running.server.port) as client:
        plain = client.request("/")
        ranged = client.request("/", {"Range": "bytes=0-9"})
        client.assert_idle(0.1)
    assert plain.status == ranged.status == 200
    assert plain.body == ranged.body and plain.body.startswith(b"<!doctype html>")
    assert ranged.header("Accept-Ranges") is None and ranged.header("Content-Range") is None
    assert (ranged.header("Content-Type") or "").startswith("text/html")


# Request fields are logged as repr() of a prefix; an absent Range header as '-'.
_LOG_LINE = re.compile(r"^DEBUG:rangewsgi:(GET|HEAD) (\S+) Range='([^'\\]*)': .+$", re.MULTILINE)


@pytest.mark.parametrize("running", [("who_answered.py", "gunicorn")], indirect=True)
def test_logged_decisions_are_the_documented_ones(running: Served) -> None:
    documented = [m for m in _LOG_LINE.finditer(RECIPES_MD.read_text(encoding="utf-8"))]
    assert len(documented) >= 5, "docs/recipes.md shows the DEBUG lines of who_answered.py"
    with RawClient(running.server.port) as client:
        for line in documented:
            method, path, range_value = line[1], line[2], line[3]
            headers = {} if range_value == "-" else {"Range": range_value}
            resp = client.request(path, headers, method)
            assert resp.status in (200, 206, 416), (line[0], resp.status)
            if resp.status == 206 and resp.header("Content-Range"):
                first, last = map(int, resp.header("Content-Range").split()[1]  # type: ignore[union-attr]
                                  .split("/")[0].split("-"))
                assert resp.body == running.data[first:last + 1]
    expected = [line[0] for line in documented]
    deadline = time.monotonic() + 5
    while True:
        logged = [line for line in running.server.log().splitlines()
                  if line.startswith("DEBUG:rangewsgi:")]
        if logged == expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert logged == expected, running.server.log()[-3000:]


# --- what the Flask section says gets no ranges -------------------------------------------------

def werkzeug_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(part) for part in version("werkzeug").split(".")[:3] if part.isdigit())


def test_flask_patterns_the_middleware_cannot_range(media: tuple[Path, bytes]) -> None:
    """``Response(open(path))`` has no length; ``send_file(path)`` ranges by itself, badly, and
    the middleware passes Werkzeug's answers through byte for byte."""
    from flask import Flask, Response, send_file
    from werkzeug.test import Client

    from rangewsgi import RangeMiddleware

    path, data = media

    def make() -> Flask:
        app = Flask("flask_patterns")

        @app.get("/response-open")
        def response_open() -> Response:
            return Response(open(path, "rb"), mimetype="video/mp4")

        @app.get("/response-open-length")  # the README's other fix: a Content-Length
        def response_open_length() -> Response:
            return Response(open(path, "rb"), mimetype="video/mp4",
                            headers={"Content-Length": str(path.stat().st_size)})

        @app.get("/send-file")
        def send_default() -> Response:
            return send_file(path, mimetype="video/mp4")

        return app

    bare, wrapped = make(), make()
    wrapped.wsgi_app = RangeMiddleware(wrapped.wsgi_app)  # type: ignore[method-assign]

    def get(app: Flask, route: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        resp = from_werkzeug(Client(app).get(route, headers=headers))
        return resp.status, dict(resp.headers), resp.body

    status, headers, body = get(wrapped, "/response-open", {"Range": "bytes=0-9"})
    assert (status, body) == (200, data) and "Accept-Ranges" not in headers
    status, headers, body = get(wrapped, "/response-open-length", {"Range": "bytes=10-19"})
    assert (status, body, headers["Content-Range"]) == (206, data[10:20],
                                                        f"bytes 10-19/{len(data)}")
    etag = get(bare, "/send-file", {})[1]["ETag"]
    cases = [{"Range": "bytes=0-9,20-29"}, {"Range": "bytes=-0"},
             {"Range": "bytes=0-9", "If-None-Match": etag}]
    answers = []
    for request in cases:
        answer = get(wrapped, "/send-file", request)
        assert answer == get(bare, "/send-file", request), request  # passed through untouched
        answers.append(answer)
    # What Werkzeug answers (docs/recipes.md says the same), checked on the versions the
    # tests run with: several ranges get 416; bytes=-0 a 416 since 3.1.9 (a 206 of the whole
    # file before); Range before If-None-Match: a 206 where RFC 9110 13.2.2 asks for a 304.
    assert answers[0][0] == 416
    if werkzeug_version() >= (3, 1, 9):
        assert answers[1][0] == 416 and "Content-Range" in answers[1][1]
    else:
        assert (answers[1][0], answers[1][2]) == (206, data)
    assert (answers[2][0], answers[2][2]) == (206, data[:10])


# --- README.md ----------------------------------------------------------------------------------

def readme_recipes() -> list[Block]:
    if not README.exists():
        return []
    return [b for b in fenced_blocks(README.read_text(encoding="utf-8"))
            if b.lang == "python" and not is_fragment(b)]


def defined_names(source: str) -> set[str]:
    """Names bound at the top level of a module (assignments, functions, classes, imports)."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def candidate_routes(source: str) -> list[str]:
    """String literals that look like URL paths, in order, then ``/``."""
    routes = [node.value for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.Constant) and isinstance(node.value, str)
              and re.fullmatch(r"/[\w./-]*", node.value)]
    return [*dict.fromkeys([*routes, "/"])]


def test_readme_recipes_are_found() -> None:
    """The README is read (the marker is honoured); each recipe block parses as Python."""
    for block in readme_recipes():
        try:
            ast.parse(block.text)
        except SyntaxError as exc:
            pytest.fail(f"README.md:{block.line}: not Python ({exc}); mark a block that is "
                        f"not a complete recipe with {FRAGMENT} on the line before its fence")


READMES = readme_recipes()


@pytest.mark.parametrize("block", READMES, ids=[f"README.md:{b.line}" for b in READMES])
def test_readme_recipe_runs(block: Block, media: tuple[Path, bytes], tmp_path: Path) -> None:
    try:
        names = defined_names(block.text)
    except SyntaxError as exc:
        pytest.fail(f"README.md:{block.line}: not Python ({exc}); mark it {FRAGMENT}")
    module = f"readme_recipe_{block.line}"
    (tmp_path / f"{module}.py").write_text(block.text, encoding="utf-8")
    attr = "application" if "application" in names else "app" if "app" in names else None
    env = {**os.environ, FILE_ENV: str(media[0]), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    if attr is None:
        proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, (
            f"README.md:{block.line} does not import (mark it {FRAGMENT} if it is not a "
            f"complete recipe):\n{proc.stderr[-3000:]}")
        return
    try:
        server = serve("gunicorn", f"{module}:{attr}", tmp_path, media[0],
                       tmp_path / "server.log")
    except RuntimeError as exc:
        pytest.fail(f"README.md:{block.line} does not start under gunicorn (mark it {FRAGMENT} "
                    f"if it is not a complete recipe):\n{exc}")
    try:
        route = None
        for candidate in candidate_routes(block.text):
            try:
                with RawClient(server.port) as client:
                    resp = client.request(candidate)
            except OSError as exc:
                pytest.fail(f"README.md:{block.line}: GET {candidate} failed ({exc}); mark it "
                            f"{FRAGMENT} if it is not a complete recipe:\n"
                            f"{server.log()[-3000:]}")
            if resp.status == 200 and resp.body == media[1]:
                route = candidate
                break
        assert route is not None, (
            f"README.md:{block.line}: no route among {candidate_routes(block.text)} serves "
            f"${FILE_ENV}")
        content_type = resp.header("Content-Type") or ""
        check_route(server.port, route, media[1], content_type)
    finally:
        server.stop()
