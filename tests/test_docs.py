"""The documentation site builds without a single warning, and documents the public API.

The build is the one docs/conf.py names (``python -m sphinx -W --keep-going -b html docs
docs/_build/html``), into a temporary directory. Needs the packages of
tests/requirements-docs.txt (``pip install -e ".[docs]"``): skipped without them, failed
without them in CI.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

DOCS = ROOT / "docs"
BUILD_TIMEOUT = 600  # a ceiling far above the usual half minute
REQUIRED = {"sphinx": "sphinx", "myst_parser": "myst-parser",
            "sphinxcontrib.mermaid": "sphinxcontrib-mermaid"}
# Every public name, as the API reference anchors it.
PUBLIC = ["rangewsgi.RangeMiddleware", "rangewsgi.FileWrapper", "rangewsgi.Predicate",
          "rangewsgi.__version__", "rangewsgi.sources.RangedSource",
          "rangewsgi.sources.SourceChanged", "rangewsgi.sources.is_ranged_source",
          "rangewsgi.paste.filter_app_factory", "rangewsgi.paste.ConfigError"]
ASGI_PUBLIC = ["rangewsgi.asgi.RangeMiddleware"]


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
    names = PUBLIC + (ASGI_PUBLIC if (ROOT / "rangewsgi" / "asgi.py").exists() else [])
    for name in names:
        assert f'id="{name}"' in api, f"{name} is missing from the API reference"
    # The options come from RangeMiddleware's docstring, rendered as a parameter list.
    for option in ("max_ranges", "max_multipart_excess", "predicate", "use_file_wrapper",
                   "file_wrapper_min_size", "block_size", "conditional", "file_validators"):
        assert f"<strong>{option}</strong>" in api, f"option {option} is not documented"


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
