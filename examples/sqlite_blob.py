"""Serve files stored as SQLite BLOBs, with byte ranges, without loading them into memory.

``sqlite3.Blob`` (Python 3.11+, ``Connection.blobopen``) reads a BLOB incrementally and can
seek, so the application hands it to ``wsgi.file_wrapper`` as a file and ``RangeMiddleware``
seeks straight to each requested range: a range at the end of a 100 MB BLOB reads only the
bytes of that range.

    python examples/sqlite_blob.py --db files.sqlite3 --add movie.mp4   # prints the id
    python examples/sqlite_blob.py --db files.sqlite3 --port 8000
    curl -r 1000-1999 http://127.0.0.1:8000/files/1 -o part.bin
"""

from __future__ import annotations

import argparse
import hashlib
import mimetypes
import sqlite3
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server
from wsgiref.util import FileWrapper

from rangewsgi import RangeMiddleware

if sys.version_info < (3, 11):
    raise SystemExit("sqlite3.Blob (Connection.blobopen) needs Python 3.11 or later")

SCHEMA = """CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    etag TEXT NOT NULL,
    data BLOB NOT NULL
)"""


class BlobFile:
    """A read-only file over one BLOB; closing it closes the BLOB and its connection."""

    def __init__(self, conn: sqlite3.Connection, blob: Any) -> None:
        self.conn = conn
        self.blob = blob  # sqlite3.Blob

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.blob.read(size)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self.blob.seek(offset, whence)  # sqlite3.Blob.seek returns None
        return self.tell()

    def tell(self) -> int:
        pos: int = self.blob.tell()
        return pos

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self.blob.close()
        finally:
            self.conn.close()


def add_file(db: str, path: Path) -> int:
    """Store ``path`` as a new row, streaming it into a zero-filled BLOB; return its id."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with sqlite3.connect(db) as conn:
        conn.execute(SCHEMA)
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        cur = conn.execute(
            "INSERT INTO files (name, content_type, etag, data) VALUES (?, ?, '', zeroblob(?))",
            (path.name, ctype, size))
        row = cur.lastrowid
        assert row is not None
        with conn.blobopen("files", "data", row) as blob, path.open("rb") as src:
            while chunk := src.read(1 << 20):
                blob.write(chunk)
                digest.update(chunk)
        # A strong validator that changes whenever the bytes do (RFC 9110 8.8.3).
        conn.execute("UPDATE files SET etag = ? WHERE id = ?",
                     (f'"{digest.hexdigest()[:32]}"', row))
    conn.close()
    return row


def make_app(db: str, wrap: Callable[[Any], Any] | None = None) -> Any:
    """The WSGI application, wrapped in RangeMiddleware. ``wrap`` may wrap each opened file
    (tests use it to count reads)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        row = None
        conn = sqlite3.connect(db, check_same_thread=False)
        try:
            if len(parts) == 2 and parts[0] == "files" and parts[1].isascii() \
                    and parts[1].isdigit():
                row = conn.execute("SELECT id, content_type, etag, length(data) FROM files "
                                   "WHERE id = ?", (int(parts[1]),)).fetchone()
            if row is None:
                conn.close()
                start_response("404 Not Found", [("Content-Type", "text/plain"),
                                                  ("Content-Length", "10")])
                return [b"not found\n"]
            file: Any = BlobFile(conn, conn.blobopen("files", "data", row[0], readonly=True))
        except BaseException:
            conn.close()
            raise
        if wrap is not None:
            file = wrap(file)
        start_response("200 OK", [("Content-Type", row[1]), ("Content-Length", str(row[3])),
                                  ("ETag", row[2])])
        if environ["REQUEST_METHOD"] == "HEAD":
            file.close()
            return []
        wrapper = environ.get("wsgi.file_wrapper", FileWrapper)
        body: Iterable[bytes] = wrapper(file, 64 * 1024)
        return body

    return RangeMiddleware(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="files.sqlite3", help="SQLite database file")
    parser.add_argument("--add", type=Path, help="store this file and print its id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.add is not None:
        print(add_file(args.db, args.add))
        return 0
    with sqlite3.connect(args.db) as conn:
        conn.execute(SCHEMA)
    conn.close()
    with make_server(args.host, args.port, make_app(args.db)) as httpd:
        print(f"serving {args.db} on http://{args.host}:{args.port}/files/<id>", flush=True)
        httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
