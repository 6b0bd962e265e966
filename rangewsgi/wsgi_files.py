"""Finding the file behind a WSGI response body: the wrapper classes of WSGI servers and
toolkits whose file is known (PEP 3333 ``wsgi.file_wrapper``)."""

from __future__ import annotations

import wsgiref.util

import werkzeug.wsgi

from .files import FileWrapper, FoundFile, is_seekable_file

__all__ = ["find_file"]

# Wrapper classes whose file is known to sit in ``.filelike`` (wsgiref, gunicorn) or ``.file``
# (werkzeug, waitress). The server's own class is checked too, by the caller.
_KNOWN_WRAPPERS: tuple[type, ...] = (FileWrapper, wsgiref.util.FileWrapper,
                                     werkzeug.wsgi.FileWrapper)


def find_file(body: object, server_wrapper: object, default_blksize: int) -> FoundFile | None:
    """The seekable file behind ``body``, if there is one, with its current position."""
    wrappers = _KNOWN_WRAPPERS
    if isinstance(server_wrapper, type):
        wrappers += (server_wrapper,)
    if isinstance(body, wrappers):
        candidate = getattr(body, "filelike", None) or getattr(body, "file", None)
        blksize = getattr(body, "blksize", None) or getattr(body, "block_size", None)
    else:
        candidate, blksize = body, None
    if candidate is None or not is_seekable_file(candidate):
        return None
    try:
        base = candidate.tell()
    except Exception:  # an app's object may raise anything here: it means no
        return None
    if not isinstance(base, int) or base < 0:
        return None
    size = blksize if isinstance(blksize, int) and blksize > 0 else default_blksize
    return FoundFile(candidate, base, getattr(body, "close", None), size)
