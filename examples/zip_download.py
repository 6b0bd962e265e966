"""Serve a directory as one ZIP download that resumes and splits: no temporary archive.

The view answers with a ``ZipSource`` over the directory's files as the response body;
``RangeMiddleware`` around the Flask app answers ``Range`` from it, so ``curl -C -`` resumes
a dropped download and ``aria2c -x 8`` fetches eight parts at once, each reading only the
files it covers. The archive's ``ETag`` changes when a file does, so a resumed download of a
changed directory starts over (``If-Range``) instead of splicing two archives.

    python examples/zip_download.py --directory ./photos --port 8000
    curl -o photos.zip http://127.0.0.1:8000/download.zip

Needs ``pip install flask`` (and ``waitress`` for ``--server waitress``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import quote

from flask import Flask, Response

from rangewsgi import RangeMiddleware
from rangewsgi.sources.zip import ZipSource


def files_of(directory: Path) -> list[tuple[str, str]]:
    """``(arcname, path)`` for each regular file under ``directory``, sorted by name.

    Symbolic links are left out (one could point outside the directory), and so are names
    a ZIP cannot hold safely (a backslash in a POSIX file name).
    """
    members = []
    for top, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            path = Path(top) / name
            arcname = path.relative_to(directory).as_posix()
            if path.is_symlink() or not path.is_file() or "\\" in arcname:
                continue
            members.append((arcname, str(path)))
    return members


def content_disposition(filename: str) -> str:
    """RFC 6266 4.3: an ASCII ``filename`` and the UTF-8 one as ``filename*`` (RFC 8187)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def make_app(directory: Path) -> Flask:
    """The Flask app serving ``directory`` as ``/download.zip``, wrapped in RangeMiddleware."""
    app = Flask(__name__)
    directory = directory.resolve()

    @app.get("/download.zip")
    def download() -> Response:
        source = ZipSource(files_of(directory))  # stats the files; reads none of them
        # direct_passthrough: werkzeug hands the source itself to the WSGI layer, where the
        # middleware reads the ranges out of it. Length and validators go in the headers too:
        # for HEAD werkzeug hands on an empty body instead of the source.
        headers = {"Content-Length": str(source.size),
                   "Content-Disposition": content_disposition(f"{directory.name}.zip")}
        if source.etag:
            headers["ETag"] = source.etag
        if source.last_modified:
            headers["Last-Modified"] = source.last_modified
        return Response(source, direct_passthrough=True, headers=headers,
                        content_type="application/zip")

    app.wsgi_app = RangeMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--server", choices=("werkzeug", "waitress"), default="werkzeug")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        parser.error(f"{args.directory}: not a directory")
    app = make_app(args.directory)
    if args.server == "waitress":
        import waitress

        waitress.serve(app, host=args.host, port=args.port, threads=8)
    else:
        from werkzeug.serving import run_simple

        run_simple(args.host, args.port, app, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
