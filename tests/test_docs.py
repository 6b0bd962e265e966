"""The documentation site builds without a single warning, documents the public API, and
shows code that runs.

The build is the one docs/conf.py names (``python -m sphinx -W --keep-going -b html docs
docs/_build/html``), into a temporary directory. Needs the packages of
tests/requirements-docs.txt (``pip install -e ".[docs]"``): skipped without them, failed
without them in CI.

The pages read as Markdown on a code host too: docs/api.md keeps its autodoc directives in
``<!-- site-only`` comments, and its Markdown (signatures, tables) matches the code. Every
``python`` block of docs/*.md not marked ``<!-- fragment -->`` runs as written (those of
docs/recipes.md are the files tests/test_recipes.py serves).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from markdown_blocks import Block, fenced_blocks, is_fragment
from support import ROOT

DOCS = ROOT / "docs"
API_MD = DOCS / "api.md"
BUILD_TIMEOUT = 600  # a ceiling far above the usual half minute
BLOCK_TIMEOUT = 120  # one code block of a page, run as a script
REQUIRED = {"sphinx": "sphinx", "myst_parser": "myst-parser",
            "sphinxcontrib.mermaid": "sphinxcontrib-mermaid"}
# Every public name, as the API reference anchors it.
PUBLIC = ["rangewsgi.RangeMiddleware", "rangewsgi.FileWrapper", "rangewsgi.Predicate",
          "rangewsgi.__version__", "rangewsgi.sources.RangedSource",
          "rangewsgi.sources.SourceChanged", "rangewsgi.sources.UpstreamError",
          "rangewsgi.sources.is_ranged_source", "rangewsgi.sources.s3.S3Source",
          "rangewsgi.sources.http.HTTPSource", "rangewsgi.sources.fsspec.FsspecSource",
          "rangewsgi.sources.zip.ZipSource", "rangewsgi.files.TruncatedBody",
          "rangewsgi.paste.filter_app_factory", "rangewsgi.paste.ConfigError",
          "rangewsgi.options.Options", "rangewsgi.options.make_options",
          "rangewsgi.options.WSGI_ONLY"]
ASGI_PUBLIC = ["rangewsgi.asgi.RangeMiddleware", "rangewsgi.asgi.Predicate",
               "rangewsgi.asgi.ResponseClosed", "rangewsgi.asgi.SourceResponse",
               "rangewsgi.django_asgi.get_asgi_application"]
# Pages whose python blocks are not run yet: each block there still has to be marked
# <!-- fragment --> or made to run. recipes.md is run by tests/test_recipes.py.
NOT_RUN_HERE = {"recipes.md", "compatibility.md"}
_SITE_ONLY = re.compile(r"^<!-- site-only\n.*?^-->\n", re.MULTILINE | re.DOTALL)


def missing_packages() -> list[str]:
    missing = []
    for module, package in REQUIRED.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a namespace parent (sphinxcontrib) is absent
            found = False
        if not found:
            missing.append(package)
    return missing


def test_requirements_file_matches_the_docs_extra() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["optional-dependencies"]["docs"]
    listed = [line.strip() for line in
              (ROOT / "tests" / "requirements-docs.txt").read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#")]
    assert listed == extra


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = missing_packages()
    if missing:
        reason = (f"{', '.join(missing)} not installed "
                  "(pip install -r tests/requirements-docs.txt)")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         "-d", str(out / ".doctrees"), str(DOCS), str(out / "html")],
        cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    assert proc.returncode == 0, (f"the docs build failed (exit {proc.returncode}):\n"
                                  f"{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}")
    assert "warning" not in proc.stderr.lower(), proc.stderr[-6000:]
    return out / "html"


@pytest.mark.slow
def test_every_page_is_built_and_in_the_table_of_contents(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        built = site / f"{page.stem}.html"
        assert built.is_file(), f"{page.name} was not built"
        if page.stem != "index":
            assert f'href="{page.stem}.html"' in index, f"{page.name} is not in the toctree"


@pytest.mark.slow
def test_api_reference_documents_every_public_name(site: Path) -> None:
    api = (site / "api.html").read_text(encoding="utf-8")
    for name in public_names():
        assert f'id="{name}"' in api, f"{name} is missing from the API reference"
    # Each middleware's options, rendered as a list in its own entry, each once.
    for name in ("rangewsgi.RangeMiddleware", "rangewsgi.asgi.RangeMiddleware"):
        entry = entry_html(api, name)
        for option in keyword_options(resolve(name)):
            assert entry.count(f"<strong>{option}</strong>") == 1, (
                f"option {option} of {name} is not documented once in its entry")


def public_names() -> list[str]:
    """Every public name the API reference documents (the ASGI ones where there is ASGI)."""
    return PUBLIC + (ASGI_PUBLIC if (ROOT / "rangewsgi" / "asgi.py").exists() else [])


def entry_html(page: str, name: str) -> str:
    """The HTML of the entry ``name`` of a built page, up to the next entry."""
    start = page.index(f'id="{name}"')
    end = page.find('<dl class="py', start)
    return page[start:end if end >= 0 else len(page)]


def resolve(dotted: str) -> Any:
    """The object a dotted name stands for (a module's attribute, or a module)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def keyword_options(obj: Any) -> list[str]:
    return [p.name for p in inspect.signature(obj).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY]


@pytest.mark.slow
def test_version_is_shown_once(site: Path) -> None:
    import rangewsgi

    api = (site / "api.html").read_text(encoding="utf-8")
    body = api[api.index('<div class="body"'):api.index('<div class="sphinxsidebar"')]
    assert body.count(rangewsgi.__version__) == 1, "the version is shown more than once"
    entry = entry_html(body, "rangewsgi.__version__")
    assert entry.count("PEP 440") == 1, "the version is described twice"


# --- the pages as Markdown --------------------------------------------------------------------

def source_form(markdown: str) -> str:
    """What a code host shows of a page: without its ``<!-- site-only`` comments."""
    return _SITE_ONLY.sub("", markdown)


def test_api_reference_reads_as_markdown() -> None:
    """No directive shows as code on a code host; every name the site documents is named."""
    markdown = API_MD.read_text(encoding="utf-8")
    readable = source_form(markdown)
    for hidden in _SITE_ONLY.findall(markdown):  # a code host ends a comment at its first -->
        assert hidden.count("-->") == 1, f"docs/api.md: --> inside a comment:\n{hidden}"
    assert "```{" not in readable and ".. auto" not in readable, (
        "docs/api.md: put directives inside a <!-- site-only comment")
    documented = re.findall(r"^\.\. auto\w+:: ([\w.]+)", markdown, re.MULTILINE)
    assert len(documented) >= len(PUBLIC)
    # Entries written by hand (a name whose module the docs build does not import) too.
    for name in [*documented, *public_names()]:
        short = name.rsplit(".", 1)[1]
        assert short in readable, f"docs/api.md documents {name} on the site only"


def test_index_links_every_page() -> None:
    """On a code host the table of contents is a list of links, not the toctree."""
    readable = source_form((DOCS / "index.md").read_text(encoding="utf-8"))
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "index.md":
            assert f"]({page.name})" in readable, f"docs/index.md does not link {page.name}"


# Signatures docs/sources.md shows by their short names.
SHORT_NAMES = {"S3Source": "rangewsgi.sources.s3.S3Source",
               "HTTPSource": "rangewsgi.sources.http.HTTPSource",
               "FsspecSource": "rangewsgi.sources.fsspec.FsspecSource"}


def shown_signatures() -> list[tuple[str, ast.Call]]:
    """The calls of the API's classes in the fragments of docs/api.md and docs/sources.md:
    their signatures as the pages write them."""
    calls = []
    for page in (API_MD, DOCS / "sources.md"):
        for block in fenced_blocks(page.read_text(encoding="utf-8")):
            if block.lang != "python" or not is_fragment(block):
                continue
            for statement in ast.parse(block.text).body:
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
                    name = ast.unparse(statement.value.func)
                    name = SHORT_NAMES.get(name, name)
                    if name.startswith("rangewsgi."):
                        calls.append((name, statement.value))
    return calls


SIGNATURES = shown_signatures()


def test_every_class_shows_its_signature() -> None:
    shown = {name for name, _ in SIGNATURES}
    assert {"rangewsgi.RangeMiddleware", "rangewsgi.asgi.RangeMiddleware",
            "rangewsgi.sources.s3.S3Source", "rangewsgi.sources.http.HTTPSource",
            "rangewsgi.sources.fsspec.FsspecSource"} <= shown


@pytest.mark.parametrize("name, call", SIGNATURES,
                         ids=[f"{name}-{n}" for n, (name, _) in enumerate(SIGNATURES)])
def test_shown_signature_is_the_code(name: str, call: ast.Call) -> None:
    """Parameter names, order and defaults shown in the pages are those of the code."""
    try:
        obj = resolve(name)
    except ImportError as exc:  # an adapter's optional library
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{name}: {exc}")
    params = list(inspect.signature(obj).parameters.values())
    required = [p.name for p in params if p.default is inspect.Parameter.empty
                and p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert [ast.unparse(arg) for arg in call.args] == required, name
    namespace = vars(sys.modules[obj.__module__])
    shown = {kw.arg: eval(compile(ast.Expression(kw.value), "docs/api.md", "eval"), namespace)
             for kw in call.keywords}
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    assert list(shown) == list(defaults), f"{name}: options or their order differ"
    assert shown == defaults, f"{name}: defaults differ"


def test_every_api_section_has_an_example() -> None:
    sections = re.split(r"^## ", API_MD.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    assert len(sections) >= 5
    for section in sections:
        runnable = [b for b in fenced_blocks(section)
                    if b.lang == "python" and not is_fragment(b)]
        assert runnable, f"docs/api.md, section {section.splitlines()[0]!r}: no example"


def page_blocks() -> list[tuple[str, Block]]:
    blocks = []
    for page in sorted(DOCS.glob("*.md")):
        if page.name in NOT_RUN_HERE:
            continue
        blocks += [(page.name, b) for b in fenced_blocks(page.read_text(encoding="utf-8"))
                   if b.lang == "python" and not is_fragment(b)]
    return blocks


PAGE_BLOCKS = page_blocks()


@pytest.mark.parametrize("page, block", PAGE_BLOCKS,
                         ids=[f"{page}:{block.line}" for page, block in PAGE_BLOCKS])
def test_code_block_runs(page: str, block: Block, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block.text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT, check=False)
    missing = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", proc.stderr)
    if proc.returncode and missing and not missing[1].startswith("rangewsgi"):
        if os.environ.get("CI") == "true":
            pytest.fail(f"docs/{page}:{block.line} needs {missing[1]}")
        pytest.skip(f"docs/{page}:{block.line} needs {missing[1]}")
    assert proc.returncode == 0, (
        f"docs/{page}:{block.line} does not run as written (mark it <!-- fragment --> if it "
        f"is not meant to):\n{proc.stderr[-3000:]}")


@pytest.mark.slow
def test_diagrams_and_recipe_files(site: Path) -> None:
    decides = (site / "how-it-decides.html").read_text(encoding="utf-8")
    assert 'class="mermaid"' in decides and "flowchart TD" in decides
    recipes = (site / "recipes.html").read_text(encoding="utf-8")
    # Links to examples/recipes/ files become downloads of those very files.
    linked = set(re.findall(r'href="(_downloads/[0-9a-f]+/[\w.]+)"', recipes))
    assert linked, "the recipe files are not linked from the recipes page"
    for href in linked:
        name = href.rsplit("/", 1)[1]
        assert (site / href).read_bytes() == (ROOT / "examples" / "recipes" / name).read_bytes()
