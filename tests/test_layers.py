"""The import contract: the ASGI adapter loads no WSGI code, the core imports no adapter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rangewsgi

PACKAGE = Path(rangewsgi.__file__).parent
# The pure core: decisions, bodies and files, with no protocol of its own.
CORE = ("engine", "plan", "decision", "conditions", "ranges", "multipart", "bodies", "files",
        "httpdate", "options", "servers")
# The adapters and what only they use: the core may import none of these.
ADAPTERS = ("middleware", "wsgi_files", "paste", "asgi", "asgi_bodies", "asgi_disconnect",
            "asgi_sources", "asgi_demo", "demo", "django_asgi")
WSGI_SIDE = ("rangewsgi.middleware", "rangewsgi.wsgi_files", "rangewsgi.paste")


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_asgi_adapter_loads_no_wsgi_code() -> None:
    out = run_python(
        "import sys, rangewsgi.asgi\n"
        "print(sorted(m for m in sys.modules if m.startswith('werkzeug')"
        f" or m in {WSGI_SIDE!r}))")
    assert out.strip() == "[]"


def test_public_imports_still_work_lazily() -> None:
    out = run_python(
        "import sys, rangewsgi\n"
        "assert 'rangewsgi.middleware' not in sys.modules\n"
        "from rangewsgi import RangeMiddleware, FileWrapper, Predicate\n"
        "from rangewsgi.asgi import RangeMiddleware as A\n"
        "print(RangeMiddleware.__module__, FileWrapper.__module__, A.__module__)")
    assert out.split() == ["rangewsgi.middleware", "rangewsgi.files", "rangewsgi.asgi"]


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        rangewsgi.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchName" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def _imported(path: Path) -> set[str]:
    """The rangewsgi modules ``path`` imports (relative or absolute), anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level or base.startswith("rangewsgi"):
                module = base.removeprefix("rangewsgi").lstrip(".")
                names.add(module.split(".")[0] if module else "")
                if not module:  # from . import x
                    names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("rangewsgi."):
                    names.add(alias.name.split(".")[1])
    return names


def test_core_imports_no_adapter() -> None:
    for module in CORE:
        imported = _imported(PACKAGE / f"{module}.py")
        assert not imported & set(ADAPTERS), (module, sorted(imported & set(ADAPTERS)))


def test_core_imports_no_werkzeug() -> None:
    for module in CORE:
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        for node in ast.walk(tree):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [alias.name for alias in node.names]
                     if isinstance(node, ast.Import) else [])
            assert not any(name.startswith("werkzeug") for name in names), module


def test_the_walk_sees_an_adapter_import(tmp_path: Path) -> None:
    # The checker itself: an adapter import in a core-like file is found.
    sample = tmp_path / "sample.py"
    sample.write_text("from .middleware import RangeMiddleware\nimport rangewsgi.asgi\n")
    assert {"middleware", "asgi"} <= _imported(sample)
