"""Serve PostgreSQL large objects, with byte ranges, straight from the database.

A psycopg2 large object (``connection.lobject``) reads in chunks and seeks
(``lo_lseek64``), so the application hands it to ``wsgi.file_wrapper`` as a file and
``RangeMiddleware`` seeks to each requested range: a range at the end of a 100 MB object
reads only that range from the server, never bytes from the start.

    python examples/pg_largeobject.py --dsn "dbname=media" --import movie.mp4  # prints the oid
    python examples/pg_largeobject.py --dsn "dbname=media" --port 8000
    curl -r 1000-1999 http://127.0.0.1:8000/objects/<oid> -o part.bin

Large objects are read inside a transaction, so each response holds one connection until
its body is closed; use a connection pool in production.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server
from wsgiref.util import FileWrapper

import psycopg2

from rangewsgi import RangeMiddleware


class LargeObjectFile:
    """A read-only file over one large object; closing it ends the transaction and the
    connection."""

    def __init__(self, conn: Any, oid: int) -> None:
        self.conn = conn
        self.lobj = conn.lobject(oid, "rb")

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.lobj.read(size)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        pos: int = self.lobj.seek(offset, whence)
        return pos

    def tell(self) -> int:
        pos: int = self.lobj.tell()
        return pos

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            if not self.lobj.closed:
                self.lobj.close()
            self.conn.rollback()  # read-only: nothing to commit
        finally:
            self.conn.close()


def import_file(dsn: str, path: str) -> int:
    """Store ``path`` as a new large object; return its oid."""
    conn = psycopg2.connect(dsn)
    try:
        lobj = conn.lobject(0, "wb", 0, path)  # lo_import on the client side
        oid: int = lobj.oid
        lobj.close()
        conn.commit()
        return oid
    finally:
        conn.close()


def make_app(dsn: str, wrap: Callable[[Any], Any] | None = None) -> Any:
    """The WSGI application, wrapped in RangeMiddleware. ``wrap`` may wrap each opened
    object (tests use it to count reads)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        if not (len(parts) == 2 and parts[0] == "objects" and parts[1].isascii()
                and parts[1].isdigit()):
            start_response("404 Not Found", [("Content-Type", "text/plain"),
                                              ("Content-Length", "10")])
            return [b"not found\n"]
        oid = int(parts[1])
        conn = psycopg2.connect(dsn)
        try:
            file: Any = LargeObjectFile(conn, oid)
        except psycopg2.OperationalError:  # no such large object
            conn.close()
            start_response("404 Not Found", [("Content-Type", "text/plain"),
                                              ("Content-Length", "10")])
            return [b"not found\n"]
        except BaseException:
            conn.close()
            raise
        size = file.seek(0, os.SEEK_END)
        file.seek(0)
        if wrap is not None:
            file = wrap(file)
        # Large objects can be rewritten in place; a real application keeps a version or a
        # digest next to the oid. Here the oid and size make the validator.
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size)),
                                  ("ETag", f'"{oid:x}-{size:x}"')])
        if environ["REQUEST_METHOD"] == "HEAD":
            file.close()
            return []
        wrapper = environ.get("wsgi.file_wrapper", FileWrapper)
        body: Iterable[bytes] = wrapper(file, 64 * 1024)
        return body

    return RangeMiddleware(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("PGDSN", "dbname=postgres"),
                        help="libpq connection string (default: $PGDSN)")
    parser.add_argument("--import", dest="import_path", metavar="FILE",
                        help="store this file as a large object and print its oid")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.import_path is not None:
        print(import_file(args.dsn, args.import_path))
        return 0
    with make_server(args.host, args.port, make_app(args.dsn)) as httpd:
        print(f"serving large objects on http://{args.host}:{args.port}/objects/<oid>",
              flush=True)
        httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
