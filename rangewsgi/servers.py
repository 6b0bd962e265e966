"""Which servers' ``wsgi.file_wrapper`` may be handed a window of a file (zero-copy).

A bounded file handed to a server's wrapper is only right where the server sends from the
file's *current* offset and stops at ``Content-Length``. Some do not: gunicorn before 21
sends from byte 0 (it calls ``socket.sendfile(file, count=n)`` without the offset, gunicorn
#2669, fixed by PR #2687 in 21.0), uWSGI sends the whole file from byte 0 (uwsgi #1230),
bjoern sends from the offset to the end of the file. A window that starts at byte 0 is still
right where the offset is ignored, one that ends at the end of the file where the length is.
Everywhere the table below does not prove a window right, including every server it does not
know, the middleware reads the range itself: slower, never wrong. Every server sends from the
file's descriptor, so only a plain file on disk is ever handed over (``files.on_disk``): the
descriptor of a ``gzip.open`` stream or an archive member holds other bytes than it yields.

Each row names the source that decides it and the test that proves it
(``tests/test_server_wrappers.py`` runs the server's wrapper bare; ``tests/test_servers.py``
traces the sendfile calls through the middleware).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PATHSEND", "ServerRow", "identify", "sends_window"]


@dataclass(frozen=True, slots=True)
class ServerRow:
    """What is proven of one server's ``wsgi.file_wrapper``."""

    name: str
    honours_offset: bool  # sends from the file's current offset (else from byte 0)
    stops_at_length: bool  # sends at most Content-Length bytes (else on to the end of file)
    evidence: str

    @property
    def zero_copy(self) -> bool:
        """Any window of a file is sent exactly."""
        return self.honours_offset and self.stops_at_length


GUNICORN = ServerRow(
    "gunicorn >= 21", True, True,
    "gunicorn/http/wsgi.py Response.sendfile (27.0.1, lines 526 and 554): offset = "
    "os.lseek(fileno, 0, os.SEEK_CUR); sock.sendfile(filelike, offset=offset, count=nbytes) "
    "with nbytes = Content-Length (PR #2687, 21.0); the gevent worker's socket gives up on "
    "sendfile and reads from that offset (gevent/_socket3.py _sendfile_use_send)")
GUNICORN_OLD = ServerRow(
    "gunicorn < 21", False, True,
    "gunicorn/http/wsgi.py Response.sendfile (20.1.0, Debian 12's python3-gunicorn, line "
    "378): sock.sendfile(filelike, count=nbytes) without offset sends from byte 0, "
    "Content-Length bytes (gunicorn #2669)")
MOD_WSGI = ServerRow(
    "mod_wsgi >= 4", True, True,
    "mod_wsgi.c Adapter_process_file_wrapper (4.9.4): the start is filelike.tell(), the "
    "length Content-Length, sent as an APR file bucket (sendfile), embedded and daemon mode")
UWSGI = ServerRow(
    "uWSGI", False, False,
    "plugins/python/wsgi_subhandler.c (2.0.31, lines 269-273): "
    "uwsgi_response_sendfile_do(wsgi_req, fd, 0, 0) sends the whole file from byte 0 "
    "(uwsgi #1230)")
BJOERN = ServerRow(
    "bjoern", True, False,
    "bjoern/server.c (3.2.2): the start is lseek(fd, 0, SEEK_CUR) (line 387), then "
    "do_sendfile runs to the end of the file whatever Content-Length says (line 497)")
UNKNOWN = ServerRow("unknown", False, False, "not proven: the middleware reads ranges itself")
PATHSEND = ServerRow(
    "ASGI path-send", False, False,
    "ASGI extensions, \"Path Send\": the message names a path and nothing else, so the "
    "server sends the whole file; only a window that is the whole file is sent exactly")

_GUNICORN_SOFTWARE = re.compile(r"gunicorn/(\d+)\.")


def _module_of(wrapper: object) -> str:
    module = getattr(wrapper, "__module__", None)
    return module if isinstance(module, str) else ""


def identify(environ: Mapping[str, Any], wrapper: object) -> ServerRow:
    """The row for the server that made ``environ`` and offers ``wrapper``."""
    module = _module_of(wrapper)
    if module == "gunicorn.http.wsgi":
        software = environ.get("SERVER_SOFTWARE")
        match = _GUNICORN_SOFTWARE.match(software) if isinstance(software, str) else None
        if match is None:
            return UNKNOWN
        return GUNICORN if int(match.group(1)) >= 21 else GUNICORN_OLD
    if "uwsgi.version" in environ:
        return UWSGI
    version = environ.get("mod_wsgi.version")
    if isinstance(version, tuple) and version[:1] >= (4,) and module == "mod_wsgi":
        return MOD_WSGI
    # bjoern names nothing in the environ; its wrapper is a C type "FileWrapper" and its
    # extension module is loaded in the process.
    if (module == "builtins" and getattr(wrapper, "__name__", None) == "FileWrapper"
            and "_bjoern" in sys.modules):
        return BJOERN
    return UNKNOWN


def sends_window(row: ServerRow, start: int, stop: int, eof: int | None) -> bool:
    """Whether the server of ``row`` sends exactly the window ``[start, stop)`` of a plain
    file on disk whose measured end is ``eof``."""
    # A server that sends from byte 0 is right for windows that start there; one that sends
    # on to the end of the file, for windows that end there.
    return ((row.honours_offset or start == 0)
            and (row.stops_at_length or (eof is not None and stop == eof)))
