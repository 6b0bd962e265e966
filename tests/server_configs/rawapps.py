"""Raw WSGI applications, without rangewsgi, that show how a server sends ``wsgi.file_wrapper``
bodies. ``tests/test_server_wrappers.py`` loads ``app`` into every server.

The file is named by ``$RANGEWSGI_TEST_FILE`` (read on each request). Routes:

- ``/environ``: JSON describing what the server tells about itself (``SERVER_SOFTWARE``, the
  environ keys and the values of the non-HTTP ones, the ``wsgi.file_wrapper`` object, the type
  of what it returns, the versions of the server modules loaded in the process);
- ``/seeked``: ``wsgi.file_wrapper(f, 8192)`` where ``f`` is the real file seeked to
  ``offset``, with ``Content-Length: length`` (less than the rest of the file);
- ``/window``: ``wsgi.file_wrapper(w, 8192)`` where ``w`` has ``read``, ``seek``, ``tell`` but
  no ``fileno``: it reads the file from ``offset`` and its ``read`` stops at
  ``offset + length`` (positions are absolute file positions, its end is ``offset + length``);
- ``/split``: ``wsgi.file_wrapper(s, 8192)`` where ``s`` has a ``fileno`` (a descriptor of its
  own, whose OS offset stays 0) while its ``tell()`` starts at ``offset`` and its ``read``
  gives the bytes from ``offset`` to ``offset + length`` (with ``os.pread``): a server that
  takes the start from the descriptor sends from byte 0, one that asks ``tell()`` or reads
  sends from ``offset``.

``offset`` and ``length`` come from the query string (defaults ``OFFSET`` and ``LENGTH``). A
server without ``wsgi.file_wrapper`` gets ``501`` on the last three routes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

OFFSET = 100_000
LENGTH = 200_000
BLOCK = 8192
StartResponse = Callable[..., Any]

# Modules whose version tells which server runs the application.
SERVER_MODULES = ("gunicorn", "waitress", "cheroot", "werkzeug", "gevent", "granian", "bjoern",
                  "twisted", "uwsgi", "mod_wsgi", "eventlet")


class Window:
    """Bytes ``[offset, offset + length)`` of a file, seekable, without ``fileno``."""

    def __init__(self, path: str, offset: int, length: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115
        self._start = offset
        self._end = offset + length
        self._file.seek(offset)

    def read(self, size: int = -1) -> bytes:
        left = self._end - self._file.tell()
        if left <= 0:
            return b""
        return self._file.read(left if size is None or size < 0 else min(size, left))

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 1:
            pos += self._file.tell()
        elif whence == 2:
            pos += self._end
        return self._file.seek(min(max(pos, self._start), self._end))

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()


class Split(Window):
    """Like ``Window``, plus a ``fileno`` whose OS offset (0) disagrees with ``tell()``."""

    def __init__(self, path: str, offset: int, length: int) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._start = self._pos = offset
        self._end = offset + length

    def read(self, size: int = -1) -> bytes:
        left = self._end - self._pos
        if left <= 0:
            return b""
        data = os.pread(self._fd, left if size is None or size < 0 else min(size, left),
                        self._pos)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 1:
            pos += self._pos
        elif whence == 2:
            pos += self._end
        self._pos = min(max(pos, self._start), self._end)
        return self._pos

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def name_of(obj: Any) -> str:
    """``module.qualname`` of a class or function."""
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None)}"


def facts(environ: dict[str, Any]) -> dict[str, Any]:
    wrapper = environ.get("wsgi.file_wrapper")
    out: dict[str, Any] = {
        "SERVER_SOFTWARE": environ.get("SERVER_SOFTWARE"),
        "keys": sorted(environ),
        "values": {k: repr(v)[:200] for k, v in environ.items() if not k.startswith("HTTP_")},
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "modules": {m: str(getattr(sys.modules[m], "__version__", getattr(
            sys.modules[m], "version", ""))) for m in SERVER_MODULES if m in sys.modules},
        "wrapper": None,
    }
    if wrapper is not None:
        with open(os.environ["RANGEWSGI_TEST_FILE"], "rb") as fh:
            made = wrapper(fh, BLOCK)
            made_type = type(made)
            attrs = sorted(a for a in ("filelike", "file", "blksize", "blocksize", "close")
                           if hasattr(made, a))
            if hasattr(made, "close"):
                made.close()
        out["wrapper"] = {
            "repr": repr(wrapper),
            "name": name_of(wrapper),
            "type": name_of(type(wrapper)),
            "makes": name_of(made_type),
            "makes_attrs": attrs,
        }
    return out


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    route = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    offset = int(query.get("offset", [OFFSET])[0])
    length = int(query.get("length", [LENGTH])[0])
    path = os.environ["RANGEWSGI_TEST_FILE"]
    if route == "/environ":
        body = json.dumps(facts(environ), sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    wrapper = environ.get("wsgi.file_wrapper")
    if route in ("/seeked", "/window", "/split") and wrapper is None:
        start_response("501 Not Implemented", [("Content-Type", "text/plain"),
                                               ("Content-Length", "21")])
        return [b"no wsgi.file_wrapper\n"]
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(length))]
    if route == "/seeked":
        fh = open(path, "rb")  # noqa: SIM115
        fh.seek(offset)
        start_response("200 OK", headers)
        result: Iterable[bytes] = wrapper(fh, BLOCK)
        return result
    if route in ("/window", "/split"):
        start_response("200 OK", headers)
        kind = Window if route == "/window" else Split
        result = wrapper(kind(path, offset, length), BLOCK)
        return result
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"not found\n"]
