"""Sphinx configuration: the Markdown pages of docs/ (MyST) and the API reference (autodoc).

Build the site, warnings as errors, then open docs/_build/html/index.html::

    python -m pip install -e ".[docs]"
    python -m sphinx -W --keep-going -q -b html docs docs/_build/html

Every page also reads as plain Markdown on a code host. api.md and index.md keep their
directives in ``<!-- site-only`` comments (a code host hides them; the site unwraps them), and
what only the Markdown reader needs (the signatures and tables the site has from the
docstrings, the list of pages) between ``<!-- source-only -->`` and ``<!-- /source-only -->``
(dropped from the site).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.ext.napoleon import Config
from sphinx.ext.napoleon.docstring import GoogleDocstring

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the working tree's rangewsgi, also when it is not installed

import rangewsgi  # noqa: E402

project = "rangewsgi"
author = "rangewsgi contributors"
project_copyright = "rangewsgi contributors"
release = rangewsgi.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinxcontrib.mermaid",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# ```mermaid blocks (how-it-decides.md) are diagrams on the site, as they are on GitHub.
myst_fence_as_directive = ["mermaid"]
# Links such as recipes.md#flask resolve to the heading's anchor, as on GitHub.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Defaults as the code writes them (64 * 1024, DEFAULT_TIMEOUT), as api.md's Markdown shows them.
autodoc_preserve_defaults = True
# The source adapters are documented without their optional libraries (the docs extra has
# none of them): rangewsgi.sources.s3 imports botocore at the top. urllib3 comes with Sphinx
# (requests); fsspec is imported only when used.
autodoc_mock_imports = ["botocore"]
# Show the protocol types by name: the WSGI ones exist only for type checkers (typeshed's
# _typeshed.wsgi) and cannot be evaluated, and the aliases (ASGIApp, Predicate) read better
# than the Callable they stand for.
autodoc_type_aliases = {
    "WSGIApplication": "WSGIApplication",
    "WSGIEnvironment": "WSGIEnvironment",
    "StartResponse": "StartResponse",
    "ASGIApp": "ASGIApp",
    "Scope": "Scope",
    "Predicate": "Predicate",
}

html_theme = "alabaster"
html_title = f"rangewsgi {release}"
html_theme_options = {"description": "HTTP byte ranges for any WSGI or ASGI app"}

# Docstrings of classes and functions may use Google-style sections ("Options:" lists the
# keyword arguments). One-line docstrings of type aliases ("``f(x) -> bool``: what False
# means") are left as they are written.
_GOOGLE: Any = Config(napoleon_custom_sections=[("Options", "params_style")])
_FORWARD_REF = re.compile(r"TypeAliasForwardRef\('([\w.]+)'\)")


def _google_sections(app: Sphinx, what: Any, name: str, obj: Any, options: Any,
                     lines: list[str]) -> None:
    if what in ("class", "exception", "function", "method"):
        lines[:] = GoogleDocstring(lines, _GOOGLE, app, what, name, obj, options).lines()
    elif what == "data" and lines and obj is not None and "\n".join(lines).strip() == (
            (type(obj).__doc__ or "").strip()):
        lines[:] = []  # a plain value (a str) documents itself, not its type


def _alias_names(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                 signature: str | None, return_annotation: str | None,
                 ) -> tuple[str | None, str | None]:
    """An alias inside a union (``Predicate | None``) is shown by its name, and links to the
    alias of the module the object is documented in (``rangewsgi`` or ``rangewsgi.asgi``)."""
    home = sys.modules.get(name.rpartition(".")[0])

    def qualify(match: re.Match[str]) -> str:
        alias = match[1]
        if "." not in alias and home is not None and hasattr(home, alias):
            return f"~{home.__name__}.{alias}"
        return alias

    def clean(text: str | None) -> str | None:
        return None if text is None else _FORWARD_REF.sub(qualify, text)
    return clean(signature), clean(return_annotation)


_TOCTREE = re.compile(r"(```\{toctree\}\n(?:.*\n)*?)(```)")


def _every_page_in_toctree(app: Sphinx, docname: str, source: list[str]) -> None:
    """index.md lists the pages in reading order; a page added to docs/ and not listed there
    yet is appended to the end of that list, so that no page is left out of the site."""
    if docname != root_doc:
        return
    match = _TOCTREE.search(source[0])
    if match is None:
        return
    listed = {line.strip() for line in match[1].splitlines()[1:]}
    pages = sorted(p.stem for p in Path(app.srcdir).glob("*.md") if p.stem != root_doc)
    missing = "".join(f"{page}\n" for page in pages if page not in listed)
    source[0] = source[0][:match.start(2)] + missing + source[0][match.start(2):]


_SITE_ONLY = re.compile(r"^<!-- site-only\n(.*?)^-->\n", re.MULTILINE | re.DOTALL)
_SOURCE_ONLY = re.compile(r"^<!-- source-only -->\n.*?^<!-- /source-only -->\n",
                          re.MULTILINE | re.DOTALL)


def _two_renderings(app: Sphinx, docname: str, source: list[str]) -> None:
    """The site unwraps ``<!-- site-only ... -->`` (directives a code host would show as
    code) and drops ``<!-- source-only -->`` text (what the site has from the docstrings)."""
    source[0] = _SITE_ONLY.sub(lambda match: match[1], _SOURCE_ONLY.sub("", source[0]))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", _every_page_in_toctree)
    app.connect("source-read", _two_renderings)
    app.connect("autodoc-process-docstring", _google_sections)
    app.connect("autodoc-process-signature", _alias_names)
    return {"parallel_read_safe": True}
