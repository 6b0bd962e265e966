"""Start the ASGI servers of the test suite, each on a free loopback port, serving
``asgiapps:app`` over a data file (``support.Server``, stopped by PID).

The servers: ``uvicorn-h11`` (h11, asyncio loop), ``uvicorn-httptools`` (httptools, uvloop),
``hypercorn`` (HTTP/1.1, and HTTP/2 over TLS with ``tls=``), ``daphne`` and ``granian``
(``--interface asgi``, which offers ``http.response.pathsend`` itself).

The servers run the applications with the cyclic garbage collector off (``NO_GC_ENV``): what
is freed only by a collection (a file kept by a reference cycle) stays visible to the tests,
whatever the timing. Each server gets a directory of its own for the temporary files that the
applications' background tasks delete (``TMP_ENV``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_configs.launch import require, shared_dir
from support import ROOT, Server, start_server

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
FILE_ENV = "RANGEWSGI_TEST_FILE"
BIG_ENV = "RANGEWSGI_TEST_BIG"
NO_GC_ENV = "RANGEWSGI_TEST_NO_GC"
TMP_ENV = "RANGEWSGI_TEST_TMP"
APP = "asgiapps:app"

# What provides each server: (module to import, pip requirement).
PROVIDERS = {
    "uvicorn-h11": ("uvicorn", "uvicorn"),
    "uvicorn-httptools": ("httptools", "uvicorn[standard] (httptools, uvloop)"),
    "hypercorn": ("hypercorn", "hypercorn"),
    "daphne": ("daphne", "daphne"),
    "granian": ("granian", "granian"),
}
SERVERS = list(PROVIDERS)
# Servers that offer the path-send extension in the scope (the ASGI "Path Send" extension).
OFFERS_PATHSEND = {"granian"}
# The frameworks the applications need (all of them are mounted in one process).
FRAMEWORKS = {"starlette": "starlette", "fastapi": "fastapi", "django": "django",
              "quart": "quart", "litestar": "litestar"}


def require_module(module: str, package: str) -> None:
    """Skip without ``module``; in CI its absence fails (``require``)."""
    require(module, package, importlib.util.find_spec(module) is not None)


def server_cmd(name: str, port: int, tls: tuple[Path, Path] | None = None) -> list[str]:
    """The command line that serves ``asgiapps:app`` with server ``name`` on ``port``."""
    host = "127.0.0.1"
    if name in ("uvicorn-h11", "uvicorn-httptools"):
        http, loop = ("h11", "asyncio") if name == "uvicorn-h11" else ("httptools", "uvloop")
        if loop == "uvloop":
            require_module("uvloop", "uvicorn[standard] (uvloop)")
        return [sys.executable, "-m", "uvicorn", "--host", host, "--port", str(port),
                "--http", http, "--loop", loop, "--log-level", "warning", "--no-access-log",
                APP]
    if name == "hypercorn":
        cmd = [sys.executable, "-m", "hypercorn", "--bind", f"{host}:{port}",
               "--log-level", "warning", "--workers", "1"]
        if tls is not None:
            cmd += ["--certfile", str(tls[0]), "--keyfile", str(tls[1])]
        return [*cmd, APP]
    if name == "daphne":
        return [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "-v", "1", APP]
    if name == "granian":
        return [str(BIN / "granian"), "--interface", "asgi", "--host", host,
                "--port", str(port), "--workers", "1", "--no-ws", "--log-level", "warning",
                APP]
    raise ValueError(f"unknown server {name!r}")


def launch(name: str, port: int, workdir: Path, data_file: Path, big_file: Path,
           tls: tuple[Path, Path] | None = None) -> Server:
    """Start server ``name`` serving ``asgiapps:app`` over ``data_file`` and ``big_file``."""
    module, package = PROVIDERS[name]
    require_module(module, package)
    for framework, requirement in FRAMEWORKS.items():
        require_module(framework, requirement)
    log = workdir / f"{name}{'-tls' if tls else ''}.log"
    temp = workdir / f"{name}{'-tls' if tls else ''}-temp"  # the task routes' own files
    temp.mkdir(exist_ok=True)
    env = {FILE_ENV: str(data_file), BIG_ENV: str(big_file), NO_GC_ENV: "1", TMP_ENV: str(temp),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE),
                                          os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return start_server(server_cmd(name, port, tls), port, env=env, cwd=workdir, log_path=log)


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, made with the ``openssl`` command."""
    require("openssl")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@dataclass
class Served:
    """One ASGI server under test: its process, its name, and the bytes of its data file."""

    server: Server
    name: str
    data: bytes


def workdir_fixture(prefix: str) -> Callable[..., Any]:
    """A module-scoped ``workdir`` fixture: a fresh shared directory named ``prefix...``,
    removed after the module."""

    @pytest.fixture(scope="module", name="workdir")
    def workdir() -> Iterator[Path]:
        path = shared_dir(prefix)
        yield path
        shutil.rmtree(path, ignore_errors=True)

    return workdir
