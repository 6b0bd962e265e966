"""Files stored in databases, served with ranges: the two runnable examples.

- ``examples/sqlite_blob.py``: an SQLite BLOB read through ``sqlite3.Blob``;
- ``examples/pg_largeobject.py``: a PostgreSQL large object read through psycopg2's
  ``lobject``, against a real PostgreSQL server from Debian's packages started here.

A counting proxy around the database file shows that a range at the end of a 100 MB object is
read by seeking there: the bytes read are those of the range, none from byte 0.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from server_configs.checks import call, check_multi, check_single
from server_configs.launch import make_data, require, shared_dir
from support import ROOT, RawClient, Server, free_port, start_server

pytestmark = pytest.mark.network

SIZE = 100 * 1024 * 1024 + 3
BLOCK = 64 * 1024  # the examples' file_wrapper block size


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Counting:
    """A file proxy that records every read: (position before, size asked, bytes returned)."""

    file: Any
    reads: list[tuple[int, int, int]] = field(default_factory=list)
    closed: bool = False

    def read(self, size: int = -1) -> bytes:
        pos = self.file.tell()
        data: bytes = self.file.read(size)
        self.reads.append((pos, size, len(data)))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        pos: int = self.file.seek(offset, whence)
        return pos

    def tell(self) -> int:
        pos: int = self.file.tell()
        return pos

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True
        self.file.close()


@pytest.fixture(scope="module")
def big_data() -> bytes:
    return make_data(SIZE, seed=5432)


def assert_reads_only(proxies: list[Counting], first: int, last: int) -> None:
    """Every read started inside [first, last] and, together, they read about the range."""
    assert len(proxies) == 1
    reads = proxies[0].reads
    assert reads, "the body was not read from the file"
    assert all(first <= pos <= last for pos, _size, _got in reads), reads[:5]
    total = sum(got for _pos, _size, got in reads)
    assert last - first + 1 <= total <= last - first + 1 + BLOCK, total
    assert proxies[0].closed


def range_checks(app_for: Any, url: str, data: bytes) -> None:
    """The ranges every database app is put through, in-process with a counting proxy."""
    n = len(data)
    for first, last in [(n - 1000, n - 1), (n - 600, n - 1), (n // 2, n // 2 + 99_999)]:
        proxies: list[Counting] = []
        check_single(call(app_for(proxies), url, headers={"Range": f"bytes={first}-{last}"}),
                     data, first, last)
        assert_reads_only(proxies, first, last)
    proxies = []
    check_single(call(app_for(proxies), url, headers={"Range": "bytes=-16"}), data, n - 16, n - 1)
    assert_reads_only(proxies, n - 16, n - 1)
    proxies = []
    check_multi(call(app_for(proxies), url, headers={"Range": "bytes=0-9,-10"}), data,
                [(0, 9), (n - 10, n - 1)])
    assert sum(got for _p, _s, got in proxies[0].reads) <= 20 + 2 * BLOCK
    assert proxies[0].closed
    proxies = []
    resp = call(app_for(proxies), url, headers={"Range": f"bytes={n}-"})
    assert resp.status == 416 and resp.header("Content-Range") == f"bytes */{n}"
    assert proxies[0].reads == [] and proxies[0].closed


# --- SQLite -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sqlite_db(big_data: bytes) -> Iterator[tuple[Path, int]]:
    """The example's table holding the 100 MB object (inserted in one statement: fast)."""
    workdir = shared_dir("rangewsgi-sqlite-")
    db = workdir / "files.sqlite3"
    example = load_example("sqlite_blob")
    conn = sqlite3.connect(db)
    try:
        conn.execute(example.SCHEMA)
        row = conn.execute("INSERT INTO files (name, content_type, etag, data) "
                           "VALUES ('big.bin', 'application/octet-stream', '\"big\"', ?)",
                           (big_data,)).lastrowid
        conn.commit()
    finally:
        conn.close()
    assert row is not None
    yield db, row
    shutil.rmtree(workdir, ignore_errors=True)


def test_sqlite_blob_ranges_seek(sqlite_db: tuple[Path, int], big_data: bytes) -> None:
    db, row = sqlite_db
    example = load_example("sqlite_blob")

    def app_for(proxies: list[Counting]) -> Any:
        def wrap(file: Any) -> Counting:
            proxies.append(Counting(file))
            return proxies[-1]
        return example.make_app(str(db), wrap)

    range_checks(app_for, f"/files/{row}", big_data)


def test_sqlite_example_runs(sqlite_db: tuple[Path, int], big_data: bytes) -> None:
    """``--add`` stores a file (streamed into the BLOB); the server then ranges both objects."""
    db, row = sqlite_db
    small = db.parent / "small.bin"
    small.write_bytes(big_data[:3_000_001])
    added = subprocess.run([sys.executable, str(ROOT / "examples" / "sqlite_blob.py"),
                            "--db", str(db), "--add", str(small)],
                           check=True, capture_output=True, text=True, timeout=60)
    small_row = int(added.stdout.strip())
    port = free_port()
    server = start_server([sys.executable, str(ROOT / "examples" / "sqlite_blob.py"),
                           "--db", str(db), "--port", str(port)], port,
                          log_path=db.parent / "sqlite_example.log")
    try:
        n = len(big_data)
        with RawClient(port) as client:
            check_single(client.request(f"/files/{row}", {"Range": "bytes=-4096"}), big_data,
                         n - 4096, n - 1)
            client.assert_idle(0.1)
        with RawClient(port) as client:
            check_single(client.request(f"/files/{small_row}", {"Range": "bytes=2999990-"}),
                         big_data[:3_000_001], 2_999_990, 3_000_000)
        with RawClient(port) as client:
            assert client.request("/files/999").status == 404
    finally:
        server.stop()


# --- PostgreSQL -------------------------------------------------------------------------------

@dataclass
class Postgres:
    server: Server
    dsn: str
    oid: int
    workdir: Path


def pg_bin(tool: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"),
                   key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    return found[-1] if found else None


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="module")
def postgres(big_data: bytes) -> Iterator[Postgres]:
    initdb, postgres_bin = pg_bin("initdb"), pg_bin("postgres")
    require("initdb", "PostgreSQL (Debian package postgresql)",
            found=initdb is not None and postgres_bin is not None)
    assert initdb is not None and postgres_bin is not None
    if os.geteuid() == 0:
        require("runuser")
    workdir = shared_dir("rangewsgi-pg-")
    data_dir, sock_dir = workdir / "data", workdir / "sock"
    for path in (data_dir, sock_dir):
        path.mkdir()
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
    subprocess.run(as_postgres([initdb, "-D", str(data_dir), "-A", "trust", "-U", "postgres",
                                "--no-sync", "-E", "UTF8"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    cmd = as_postgres([postgres_bin, "-D", str(data_dir), "-p", str(port), "-k", str(sock_dir),
                       "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                       "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
    server = start_server(cmd, port, cwd=workdir, log_path=workdir / "postgres.log", timeout=60)
    try:
        import psycopg2

        dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        conn = psycopg2.connect(dsn)
        try:
            lobj = conn.lobject(0, "wb")
            for start in range(0, len(big_data), 8 << 20):
                lobj.write(big_data[start:start + (8 << 20)])
            oid = lobj.oid
            lobj.close()
            conn.commit()
        finally:
            conn.close()
        yield Postgres(server, dsn, oid, workdir)
    finally:
        server.stop(signal.SIGINT, timeout=30)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(workdir, ignore_errors=True)


def test_pg_largeobject_ranges_seek(postgres: Postgres, big_data: bytes) -> None:
    example = load_example("pg_largeobject")

    def app_for(proxies: list[Counting]) -> Any:
        def wrap(file: Any) -> Counting:
            proxies.append(Counting(file))
            return proxies[-1]
        return example.make_app(postgres.dsn, wrap)

    range_checks(app_for, f"/objects/{postgres.oid}", big_data)


def test_pg_example_runs(postgres: Postgres, big_data: bytes) -> None:
    port = free_port()
    server = start_server([sys.executable, str(ROOT / "examples" / "pg_largeobject.py"),
                           "--dsn", postgres.dsn, "--port", str(port)], port,
                          log_path=postgres.workdir / "example.log")
    try:
        n = len(big_data)
        with RawClient(port) as client:
            resp = client.request(f"/objects/{postgres.oid}", {"Range": "bytes=-70000"})
            check_single(resp, big_data, n - 70000, n - 1)
            client.assert_idle(0.1)
        with RawClient(port) as client:
            check_multi(client.request(f"/objects/{postgres.oid}",
                                       {"Range": "bytes=0-99,50000000-50000099"}),
                        big_data, [(0, 99), (50_000_000, 50_000_099)])
        with RawClient(port) as client:
            assert client.request("/objects/12345").status == 404
    finally:
        server.stop()
