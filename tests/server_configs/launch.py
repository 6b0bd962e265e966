"""Start the real servers used by the test suite, each on a free loopback port.

``launch(name, port, workdir, data_file)`` starts one server (named as in ``SERVERS``) serving
``serverapps.<app>`` over ``data_file`` and returns a ``support.Server`` to stop by PID.
Configuration files for Apache are written from the templates next to this module.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from support import ROOT, Server, start_server

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
FILE_ENV = "RANGEWSGI_TEST_FILE"

# Servers that keep an HTTP/1.1 connection open after a response: two requests are sent on
# one connection there, so that a body overrunning its Content-Length breaks the second.
KEEPALIVE = {
    "gunicorn-sync": False,  # the sync worker closes after every response (documented)
    "gunicorn-gthread": True,
    "waitress": True,
    "uwsgi": False,  # --http-socket answers HTTP/1.1 without keep-alive, then closes
    "uwsgi-http11": True,  # --http11-socket keeps connections open
    "cheroot": True,
    "werkzeug-run-simple": False,  # the development server sends Connection: close
    "werkzeug-make-server": False,
    "wsgiref": False,  # HTTP/1.0 server
    "mod_wsgi": True,
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


def apache_dir(workdir: Path, port: int, data_file: Path) -> Path:
    """Write an Apache + mod_wsgi configuration into ``workdir``; return the config file.

    Debian's mod_wsgi embeds Debian's /usr/bin/python3, which lacks the test dependencies, and
    Apache serves pages as www-data when started by root, which cannot read /root. The
    application's import path is therefore copied into ``workdir/lib`` (rangewsgi, serverapps
    and the pure-Python dependencies), readable by www-data, and named by WSGIPythonPath.
    """
    lib = workdir / "lib"
    lib.mkdir()
    shutil.copytree(ROOT / "rangewsgi", lib / "rangewsgi",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tests" / "serverapps.py", lib / "serverapps.py")
    for dep in ("werkzeug", "markupsafe"):
        origin = __import__(dep).__file__
        assert origin is not None
        shutil.copytree(Path(origin).parent, lib / dep,
                        ignore=shutil.ignore_patterns("__pycache__"))
    user = ""
    if os.geteuid() == 0:
        pwd.getpwnam("www-data")
        user = "User www-data\nGroup www-data"
    values = {"@DIR@": str(workdir), "@PORT@": str(port), "@USER@": user,
              "@MODULES@": "/usr/lib/apache2/modules", "@PYTHONPATH@": str(lib),
              "@FILE@": str(data_file)}
    for template in ("apache2.conf.in", "app.wsgi.in"):
        text = (HERE / template).read_text()
        for key, value in values.items():
            text = text.replace(key, value)
        (workdir / template.removesuffix(".in")).write_text(text)
    for path in [workdir, *workdir.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
                   | (stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0))
    return workdir / "apache2.conf"


def launch(name: str, port: int, workdir: Path, data_file: Path, app: str = "app",
           extra_env: dict[str, str] | None = None, strace: Path | None = None) -> Server:
    """Start server ``name`` serving ``serverapps.<app>`` over ``data_file``; under strace
    (sendfile calls only, written to ``strace``) when that is given."""
    env = {FILE_ENV: str(data_file), **(extra_env or {})}
    log = workdir / f"{name}.log"
    spec = f"serverapps:{app}"
    if name.startswith("gunicorn-"):
        cmd = gunicorn_cmd(port, name.removeprefix("gunicorn-"), spec)
    elif name == "waitress":
        cmd = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", spec]
    elif name in ("uwsgi", "uwsgi-http11"):
        require(str(BIN / "uwsgi"), "uWSGI (pip install uwsgi)")
        cmd = uwsgi_cmd(port, spec, "--http-socket" if name == "uwsgi" else "--http11-socket")
    elif name == "mod_wsgi":
        require("apache2")
        require("/usr/lib/apache2/modules/mod_wsgi.so", "libapache2-mod-wsgi-py3")
        if app != "app":
            raise ValueError("the Apache configuration serves serverapps.app only")
        conf = apache_dir(workdir, port, data_file)
        cmd = ["apache2", "-X", "-f", str(conf)]
    else:
        cmd = [sys.executable, str(HERE / "run_server.py"), name, str(port), app]
    if strace is not None:
        require("strace")
        cmd = strace_cmd(strace, cmd)
    return start_server(cmd, port, env=env, cwd=workdir, log_path=log)
