"""Start the real servers used by the test suite, each on a free loopback port.

``launch(name, port, workdir, data_file)`` starts one server (named as in ``SERVERS``) serving
``serverapps.<app>`` (or ``module:attr``, e.g. ``rawapps:app``) over ``data_file`` and returns a
``support.Server`` to stop by PID. Configuration files for Apache are written from the
templates next to this module.

The servers:

- ``gunicorn-sync``, ``gunicorn-gthread``, ``gunicorn-gevent``: gunicorn from pip (current);
- ``gunicorn20-sync``: gunicorn 20.1.0 as Debian 12 ships it (``python3-gunicorn``), on
  Debian's ``/usr/bin/python3``, with nothing from pip on its import path;
- ``waitress``, ``cheroot``, ``wsgiref``, ``werkzeug-run-simple``, ``werkzeug-make-server``,
  ``gevent`` (``gevent.pywsgi.WSGIServer``), ``bjoern``, ``twisted`` (``twisted.web.wsgi``):
  in-process servers started by ``run_server.py``;
- ``granian``: ``granian --interface wsgi``;
- ``uwsgi`` (``--http-socket``), ``uwsgi-http11`` (``--http11-socket``);
- ``mod_wsgi`` (embedded mode) and ``mod_wsgi-daemon`` (``WSGIDaemonProcess``): Debian's
  Apache with Debian's mod_wsgi.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import random
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from support import ROOT, Server, start_server

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
FILE_ENV = "RANGEWSGI_TEST_FILE"

# Debian 12's gunicorn (apt package python3-gunicorn) and the interpreter it is packaged for.
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_GUNICORN = "/usr/lib/python3/dist-packages/gunicorn"
DEBIAN_GUNICORN_VERSION = "20.1.0"

# The module each server started by run_server.py imports, and what provides it.
IN_PROCESS = {
    "cheroot": ("cheroot", "cheroot"),
    "werkzeug-run-simple": ("werkzeug", "werkzeug"),
    "werkzeug-make-server": ("werkzeug", "werkzeug"),
    "wsgiref": ("wsgiref", "the standard library"),
    "gevent": ("gevent", "gevent"),
    "bjoern": ("bjoern", "bjoern (pip install bjoern; needs libev-dev and a C compiler)"),
    "twisted": ("twisted", "twisted"),
}

# Servers that keep an HTTP/1.1 connection open after a response: two requests are sent on
# one connection there, so that a body overrunning its Content-Length breaks the second.
KEEPALIVE = {
    "gunicorn-sync": False,  # the sync worker closes after every response (documented)
    "gunicorn-gthread": True,
    "gunicorn-gevent": True,  # async workers keep connections open (--keep-alive, 2 s)
    "gunicorn20-sync": False,  # Debian 12's gunicorn 20.1.0, sync worker: closes too
    "waitress": True,
    "uwsgi": False,  # --http-socket answers HTTP/1.1 without keep-alive, then closes
    "uwsgi-http11": True,  # --http11-socket keeps connections open
    "cheroot": True,
    "werkzeug-run-simple": False,  # the development server sends Connection: close
    "werkzeug-make-server": False,
    "wsgiref": False,  # HTTP/1.0 server
    "mod_wsgi": True,
    "mod_wsgi-daemon": True,  # Apache keeps the client connection; the daemon is behind it
    "gevent": True,  # gevent.pywsgi answers HTTP/1.1 with keep-alive
    "granian": True,  # --http1-keep-alive is on by default
    "bjoern": True,  # keeps HTTP/1.1 connections open when the length is known
    "twisted": True,  # twisted.web's HTTPChannel is persistent for HTTP/1.1
}
SERVERS = list(KEEPALIVE)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(tool: str, what: str | None = None, found: bool | None = None) -> None:
    """Skip without ``tool`` (a command, or an absolute path; or ``found`` says whether it is
    there); in CI its absence fails."""
    if found is None:
        found = Path(tool).exists() if tool.startswith("/") else shutil.which(tool) is not None
    if not found:
        import pytest

        if in_ci():
            pytest.fail(f"{what or tool} is required in CI")
        pytest.skip(f"{what or tool} not installed")


def make_data(size: int, seed: int = 9110) -> bytes:
    """Deterministic bytes with no repeating pattern, so that an offset error shows.

    Past 1 MiB, each MiB is a different rotation of one random MiB (fast to build for
    100 MB, and still no two blocks alike).
    """
    base = random.Random(seed).randbytes(min(size, 1 << 20))
    if size <= len(base):
        return base
    out = bytearray()
    for block in range(-(-size // len(base))):
        turn = (block * 7919) % len(base)
        out += base[turn:]
        out += base[:turn]
    return bytes(out[:size])


def shared_dir(prefix: str) -> Path:
    """A temporary directory that other local users (www-data, postgres) can read."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@contextmanager
def data_file_in_env(prefix: str, size: int) -> Iterator[tuple[Path, bytes]]:
    """A data file in a fresh shared directory, named by ``$RANGEWSGI_TEST_FILE`` meanwhile."""
    import pytest

    workdir = shared_dir(prefix)
    try:
        with pytest.MonkeyPatch.context() as mp:
            path, data = write_data(workdir, size)
            mp.setenv(FILE_ENV, str(path))
            yield path, data
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# A fixed modification time a long time ago: Last-Modified is then a strong validator
# (RFC 9110 8.8.2.2) and the ETag built from it the same in every run.
MTIME = 1_700_000_000


def write_data(directory: Path, size: int, name: str = "data.bin") -> tuple[Path, bytes]:
    data = make_data(size)
    path = directory / name
    path.write_bytes(data)
    path.chmod(0o644)
    os.utime(path, (MTIME, MTIME))
    return path, data


def strace_cmd(trace: Path, cmd: Sequence[str]) -> list[str]:
    """``cmd`` under strace, recording only sendfile calls, in every process and thread."""
    return ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=sendfile,sendfile64",
            "-o", str(trace), *cmd]


def gunicorn_cmd(port: int, worker: str, app: str = "serverapps:app",
                 extra: Sequence[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "gunicorn", "-k", worker, "-w", "1",
           "-b", f"127.0.0.1:{port}", "--access-logfile", "-",
           "--access-logformat", '%(s)s %(B)s "%({range}i)s" "%(r)s"', *extra]
    if worker == "gthread":
        cmd += ["--threads", "4"]
    return [*cmd, app]


def uwsgi_cmd(port: int, app: str = "serverapps:app",
              socket: str = "--http-socket") -> list[str]:
    return [str(BIN / "uwsgi"), socket, f"127.0.0.1:{port}",
            "--module", app, "--die-on-term", "--processes", "1", "--threads", "2",
            "--home", sys.prefix, "--disable-logging"]


def lib_dir(workdir: Path) -> Path:
    """The applications' import path copied into ``workdir/lib``, readable by every user.

    For servers that run on Debian's /usr/bin/python3 (mod_wsgi, Debian's gunicorn), which
    lacks the test dependencies and must not see the pip site-packages (they would shadow
    Debian's own packages, gunicorn first): rangewsgi, the test applications and the
    pure-Python dependencies (werkzeug, markupsafe).
    """
    lib = workdir / "lib"
    lib.mkdir()
    shutil.copytree(ROOT / "rangewsgi", lib / "rangewsgi",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tests" / "serverapps.py", lib / "serverapps.py")
    shutil.copy(HERE / "rawapps.py", lib / "rawapps.py")
    for dep in ("werkzeug", "markupsafe"):
        origin = __import__(dep).__file__
        assert origin is not None
        shutil.copytree(Path(origin).parent, lib / dep,
                        ignore=shutil.ignore_patterns("__pycache__"))
    make_readable(workdir)
    return lib


def make_readable(top: Path) -> None:
    """Let other local users (www-data) read everything under ``top``."""
    for path in [top, *top.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
                   | (stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0))


def apache_dir(workdir: Path, port: int, data_file: Path, app: str = "serverapps:app",
               daemon: bool = False) -> Path:
    """Write an Apache + mod_wsgi configuration into ``workdir``; return the config file.

    Debian's mod_wsgi embeds Debian's /usr/bin/python3, which lacks the test dependencies, and
    Apache serves pages as www-data when started by root, which cannot read /root. The
    application's import path is therefore copied into ``workdir/lib`` (``lib_dir``), readable
    by www-data, and named by WSGIPythonPath (and by ``python-path`` in daemon mode).
    ``daemon`` runs the application in a mod_wsgi daemon process instead of inside Apache.
    """
    lib = lib_dir(workdir)
    user = ""
    if os.geteuid() == 0:
        pwd.getpwnam("www-data")
        user = "User www-data\nGroup www-data"
    module, _, attr = app.partition(":")
    values = {"@DIR@": str(workdir), "@PORT@": str(port), "@USER@": user,
              "@MODULES@": "/usr/lib/apache2/modules", "@PYTHONPATH@": str(lib),
              "@FILE@": str(data_file), "@MODULE@": module, "@ATTR@": attr}
    mode = (HERE / "apache2-daemon.inc.in").read_text() if daemon else ""
    for template in ("apache2.conf.in", "app.wsgi.in"):
        text = (HERE / template).read_text().replace("@MODE@", mode)
        for key, value in values.items():
            text = text.replace(key, value)
        (workdir / template.removesuffix(".in")).write_text(text)
    make_readable(workdir)
    return workdir / "apache2.conf"


def debian_gunicorn_cmd(port: int, worker: str, app: str) -> list[str]:
    """Debian's gunicorn: ``python3 -m gunicorn`` on /usr/bin/python3 (the apt package
    ``gunicorn`` only adds a /usr/bin/gunicorn script that runs the same module)."""
    cmd = gunicorn_cmd(port, worker, app)
    assert cmd[:3] == [sys.executable, "-m", "gunicorn"]
    return [DEBIAN_PYTHON, "-s", *cmd[1:]]


def require_debian_gunicorn() -> None:
    """Debian's python3-gunicorn must be there, and be the version the tests are about."""
    require(DEBIAN_PYTHON)
    require(f"{DEBIAN_GUNICORN}/__init__.py", "python3-gunicorn (Debian 12)")
    out = subprocess.run([DEBIAN_PYTHON, "-I", "-c", "import gunicorn; print(gunicorn.__file__,"
                          " gunicorn.__version__)"], capture_output=True, text=True, timeout=30,
                         check=False)
    where, _, version = out.stdout.strip().partition(" ")
    if not where.startswith(DEBIAN_GUNICORN) or version != DEBIAN_GUNICORN_VERSION:
        raise RuntimeError(f"Debian's gunicorn is not {DEBIAN_GUNICORN_VERSION}: {out}")


def launch(name: str, port: int, workdir: Path, data_file: Path, app: str = "app",
           extra_env: dict[str, str] | None = None, strace: Path | None = None) -> Server:
    """Start server ``name`` serving ``serverapps.<app>`` (or ``app`` itself when it is a
    ``module:attr`` spec) over ``data_file``; under strace (sendfile calls only, written to
    ``strace``) when that is given."""
    # The applications: serverapps (tests/) and rawapps (next to this module).
    path = [str(ROOT), str(ROOT / "tests"), str(HERE), os.environ.get("PYTHONPATH", "")]
    env = {FILE_ENV: str(data_file), "PYTHONPATH": os.pathsep.join(p for p in path if p),
           **(extra_env or {})}
    log = workdir / f"{name}.log"
    spec = app if ":" in app else f"serverapps:{app}"
    if name == "gunicorn-gevent":
        require("gevent", "gevent (pip install gevent)",
                importlib.util.find_spec("gevent") is not None)
        cmd = gunicorn_cmd(port, "gevent", spec)
    elif name.startswith("gunicorn-"):
        cmd = gunicorn_cmd(port, name.removeprefix("gunicorn-"), spec)
    elif name == "gunicorn20-sync":
        require_debian_gunicorn()
        # Only the copied applications on the import path (no user site either, -s): the
        # pip site-packages must never shadow Debian's gunicorn.
        env["PYTHONPATH"] = str(lib_dir(workdir))
        cmd = debian_gunicorn_cmd(port, "sync", spec)
    elif name == "granian":
        require(str(BIN / "granian"), "granian (pip install granian)")
        cmd = [str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--blocking-threads", "4",
               "--no-ws", "--log-level", "warning", spec]
    elif name == "waitress":
        cmd = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", spec]
    elif name in ("uwsgi", "uwsgi-http11"):
        require(str(BIN / "uwsgi"), "uWSGI (pip install uwsgi)")
        cmd = uwsgi_cmd(port, spec, "--http-socket" if name == "uwsgi" else "--http11-socket")
    elif name in ("mod_wsgi", "mod_wsgi-daemon"):
        require("apache2")
        require("/usr/lib/apache2/modules/mod_wsgi.so", "libapache2-mod-wsgi-py3")
        conf = apache_dir(workdir, port, data_file, spec, daemon=name == "mod_wsgi-daemon")
        cmd = ["apache2", "-X", "-f", str(conf)]
    elif name in IN_PROCESS:
        module, package = IN_PROCESS[name]
        require(module, package, importlib.util.find_spec(module) is not None)
        cmd = [sys.executable, str(HERE / "run_server.py"), name, str(port), spec]
    else:
        raise ValueError(f"unknown server {name!r}")
    if strace is not None:
        require("strace")
        cmd = strace_cmd(strace, cmd)
    return start_server(cmd, port, env=env, cwd=workdir, log_path=log)
