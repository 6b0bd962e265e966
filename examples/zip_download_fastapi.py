"""Serve a directory as one ZIP download from FastAPI: resumable, splittable, no temporary file.

The route answers with a ``SourceResponse`` over a ``ZipSource`` of the directory's files;
``RangeMiddleware`` (the ASGI one) answers ``Range`` out of it, reading only the files each
range covers, in worker threads. ``curl -C -`` resumes a dropped download, ``aria2c -x 8``
fetches eight parts at once, and a browser's download resumes; the archive's ``ETag``
changes when a file does, so a resumed download of a changed directory starts over
(``If-Range``) instead of splicing two archives.

    python examples/zip_download_fastapi.py --directory ./photos --port 8000
    curl -o photos.zip http://127.0.0.1:8000/download.zip

Needs ``pip install fastapi uvicorn``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI

from rangewsgi.asgi import RangeMiddleware, SourceResponse
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
            if not path.is_symlink() and path.is_file() and "\\" not in arcname:
                members.append((arcname, str(path)))
    return members


def attachment(filename: str) -> str:
    """RFC 6266 4.3: an ASCII ``filename`` and the UTF-8 one as ``filename*`` (RFC 8187)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def make_app(directory: Path) -> FastAPI:
    """The FastAPI app serving ``directory`` as ``/download.zip``, inside RangeMiddleware."""
    app = FastAPI()
    app.add_middleware(RangeMiddleware)
    directory = directory.resolve()

    # A plain ``def``: FastAPI runs it in a worker thread, where walking and stat-ing the
    # directory does not hold up the event loop.
    @app.api_route("/download.zip", methods=["GET", "HEAD"])
    def download() -> SourceResponse:
        source = ZipSource(files_of(directory))  # stats the files; reads none of them
        return SourceResponse(source, headers={
            "Content-Disposition": attachment(f"{directory.name}.zip")})

    return app


def main(argv: list[str] | None = None) -> int:
    """The command line: serve ``--directory`` with uvicorn."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        parser.error(f"{args.directory}: not a directory")
    uvicorn.run(make_app(args.directory), host=args.host, port=args.port,
                log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
