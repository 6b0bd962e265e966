"""The project as a user receives it: build an sdist and a wheel, check and install them.

``python -m build`` runs in a copy of the working tree (so the tree's own build metadata is not
rewritten while other tests run), ``twine check`` validates the distributions, and the wheel is
installed into a fresh virtual environment without the system site-packages. There the console
script, ``python -m rangewsgi`` and the PasteDeploy filter (``egg:rangewsgi``) must work from
the installed files alone. Needs PyPI (the build backend, werkzeug and PasteDeploy).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

import pytest
from support import ROOT, RawClient, free_port, start_server

import rangewsgi

pytestmark = [pytest.mark.slow, pytest.mark.network]

STEP_TIMEOUT = 300  # a ceiling for one subprocess, far above its normal few seconds
IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                 ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
                                 ".benchmarks", "out", "*.pyc")


def need_module(name: str) -> None:
    """Skip without ``name``, except in CI where a missing tool is a failure."""
    if importlib.util.find_spec(name) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (pip install -r tests/requirements.txt)")
        pytest.skip(f"{name} is not installed")


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``cmd``; on failure show its output. Returns stdout."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT, check=False)
    assert proc.returncode == 0, (f"{cmd} exited {proc.returncode}\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def clean_env() -> dict[str, str]:
    """The environment without anything that would put the working tree on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass
class Built:
    sdist: Path
    wheel: Path
    venv_python: Path
    work: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    need_module("build")
    need_module("twine")
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    dist = work / "dist"
    env = clean_env()
    # Default mode: the sdist first, then the wheel built from the unpacked sdist, so a file
    # missing from the sdist breaks the wheel.
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], work, env)
    sdists = sorted(dist.glob("*.tar.gz"))
    wheels = sorted(dist.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in dist.iterdir())
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], work, env)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--no-input", str(wheels[0]),
         "pastedeploy"], work, env)
    yield Built(sdists[0], wheels[0], python, work)


def wheel_metadata(wheel: Path) -> tuple[list[str], dict[str, list[str]], str]:
    """(names in the wheel, METADATA fields, entry_points.txt)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        eps_name = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        message = HeaderParser().parsestr(archive.read(meta_name).decode())
        eps = archive.read(eps_name).decode()
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return names, fields, eps


def test_version_is_single_sourced() -> None:
    """pyproject.toml reads the version from ``rangewsgi.__version__`` and states none itself."""
    text = (ROOT / "pyproject.toml").read_text()
    project = re.search(r"^\[project\]\n(.*?)(?=^\[)", text, re.S | re.M)
    assert project is not None
    assert re.search(r"^dynamic\s*=\s*\[[^]]*\"version\"", project.group(1), re.M)
    assert not re.search(r"^version\s*=", project.group(1), re.M)
    assert re.search(r"^version\s*=\s*\{\s*attr\s*=\s*\"rangewsgi.__version__\"", text, re.M)


def test_twine_check_passes(built: Built) -> None:
    out = run([sys.executable, "-m", "twine", "check", "--strict", str(built.sdist),
               str(built.wheel)], built.work, clean_env())
    assert out.count("PASSED") == 2, out


def test_wheel_contents_and_metadata(built: Built) -> None:
    version = rangewsgi.__version__
    assert built.wheel.name.startswith(f"rangewsgi-{version}-py3-none-any")
    assert built.sdist.name == f"rangewsgi-{version}.tar.gz"
    names, fields, eps = wheel_metadata(built.wheel)
    assert "rangewsgi/py.typed" in names
    assert "rangewsgi/paste.py" in names
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert fields["Name"] == ["rangewsgi"]
    assert fields["Version"] == [version]
    assert fields["Requires-Python"] == [">=3.10"]
    assert any(req.startswith("werkzeug") for req in fields["Requires-Dist"])
    assert any(n.endswith("LICENSE") and ".dist-info/" in n for n in names)
    assert "MIT" in (fields.get("License-Expression", []) + fields.get("License", []))
    assert "[paste.filter_app_factory]" in eps
    assert "main = rangewsgi.paste:filter_app_factory" in eps
    assert "rangewsgi = rangewsgi.demo:main" in eps


def test_sdist_contents(built: Built) -> None:
    with tarfile.open(built.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("pyproject.toml", "README.md", "LICENSE", "rangewsgi/__init__.py",
                   "rangewsgi/paste.py", "rangewsgi/py.typed"):
        assert needed in names, needed


def test_installed_help_and_console_script(built: Built) -> None:
    env = clean_env()
    located = run([str(built.venv_python), "-c",
                   "import rangewsgi, importlib.metadata as m; "
                   "print(rangewsgi.__file__); print(rangewsgi.__version__); "
                   "print(m.version('rangewsgi'))"], built.work, env).split()
    assert Path(located[0]).is_relative_to(built.work / "venv")  # not the working tree
    assert located[1:] == [rangewsgi.__version__] * 2
    for cmd in ([str(built.venv_python), "-m", "rangewsgi", "--help"],
                [str(built.venv_python.parent / "rangewsgi"), "--help"]):
        out = run(cmd, built.work, env)
        assert "--max-ranges" in out and "module:app" in out


def test_installed_demo_serves_ranges(built: Built) -> None:
    """``python -m rangewsgi DIR`` from the venv answers a real range request."""
    data = random.Random(14).randbytes(100_003)
    site = built.work / "site"
    site.mkdir(exist_ok=True)
    (site / "blob.bin").write_bytes(data)
    port = free_port()
    server = start_server([str(built.venv_python), "-m", "rangewsgi", str(site), "--port",
                           str(port), "--quiet"], port, env={"PYTHONPATH": ""}, cwd=built.work,
                          log_path=built.work / "demo.log")
    try:
        with RawClient(port) as client:
            resp = client.request("/blob.bin", {"Range": "bytes=99990-"})
            assert resp.status == 206
            assert resp.header("Content-Range") == "bytes 99990-100002/100003"
            assert resp.body == data[99990:]
    finally:
        server.stop()


PASTE_SCRIPT = """\
import base64, json, sys
from paste.deploy import loadapp
from werkzeug.test import Client

app = loadapp("config:" + sys.argv[1])
client = Client(app)
out = {"type": type(app).__module__ + "." + type(app).__qualname__,
       "file": sys.modules["rangewsgi"].__file__}
for name, spec in (("one", "bytes=10-29"), ("eleven", sys.argv[2])):
    resp = client.get("/", headers={"Range": spec})
    out[name] = [resp.status_code, base64.b64encode(resp.get_data()).decode()]
print(json.dumps(out))
"""

PASTE_INI = """\
[app:inner]
use = call:packaged_app:make_app

[filter:range]
use = egg:rangewsgi
max_ranges = 10
use_file_wrapper = false

[pipeline:main]
pipeline = range inner
"""

PASTE_APP = """\
DATA = bytes(range(256)) * 40 + b"tail"

def make_app(global_conf):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(DATA)))])
        return [DATA]
    return app
"""


def test_installed_paste_filter(built: Built) -> None:
    cfg = built.work / "pastecfg"
    cfg.mkdir(exist_ok=True)
    (cfg / "app.ini").write_text(PASTE_INI)
    (cfg / "packaged_app.py").write_text(PASTE_APP)
    (cfg / "check.py").write_text(PASTE_SCRIPT)
    eleven = "bytes=" + ",".join(f"{i * 100}-{i * 100 + 9}" for i in range(11))
    env = {**clean_env(), "PYTHONPATH": str(cfg)}
    out = json.loads(run([str(built.venv_python), str(cfg / "check.py"), str(cfg / "app.ini"),
                          eleven], cfg, env))
    data = bytes(range(256)) * 40 + b"tail"
    assert out["type"] == "rangewsgi.middleware.RangeMiddleware"
    assert Path(out["file"]).is_relative_to(built.work / "venv")
    assert out["one"] == [206, base64.b64encode(data[10:30]).decode()]
    # max_ranges = 10 from the ini: 11 ranges are ignored and the whole body is sent.
    assert out["eleven"] == [200, base64.b64encode(data).decode()]
