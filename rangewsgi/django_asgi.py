"""Django under ASGI: a ``FileResponse`` over a file on disk sent as ``http.response.pathsend``.

Django's ``ASGIHandler`` streams every ``FileResponse`` as ``http.response.body`` messages, so
an ASGI middleware sees bytes from byte 0 and nothing about the file: no validators to
generate, no way to seek. The ASGI "Path Send" extension names the file instead: a server (or
``rangewsgi.asgi.RangeMiddleware``, which offers the extension to the application on every
``GET`` and ``HEAD``) then sends it, and the middleware can answer ranges by seeking and give
the file an ``ETag`` and a ``Last-Modified`` (hence ``304`` and ``If-Range``, RFC 9110 13.1).

Use ``rangewsgi.django_asgi.get_asgi_application()`` where a project uses
``django.core.asgi.get_asgi_application()``. Everything else stays Django's: a response is
sent as a path only when the path-send bytes are exactly the bytes Django would stream (the
whole of a regular file, opened in binary mode at position 0, whose name on disk is the file
that is open), its header fields and cookies are Django's, and the response is closed
(``request_finished`` sent, the file closed) exactly where Django closes it. Any other
response, or a scope that does not offer the extension, goes through Django's own code.

Django is imported only by this module: ``rangewsgi`` does not depend on it.
"""

from __future__ import annotations

import contextvars
import io
import os
import stat
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

# Django ships no type information, and is absent where rangewsgi is type-checked without
# it: Any here, with or without a mypy override for these modules.
import django  # type: ignore[import-not-found, import-untyped, unused-ignore]
from asgiref.sync import sync_to_async  # type: ignore[import-not-found, unused-ignore]
from django.core.handlers.asgi import ASGIHandler  # type: ignore[import-not-found, import-untyped, unused-ignore]
from django.http import FileResponse  # type: ignore[import-not-found, import-untyped, unused-ignore]

__all__ = ["PathSendASGIHandler", "get_asgi_application", "pathsend_target"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PATHSEND = "http.response.pathsend"
# Django 5.0 moved the response's close() from send_response() into handle(); Django 4.2
# (the oldest supported LTS) still closes at the end of send_response().
_CLOSED_BY_SEND_RESPONSE = django.VERSION < (5, 0)

# Whether the scope of the request being handled offers path-send. Set around handle(): the
# tasks Django starts for the response copy the context, so send_response() sees it.
_pathsend_offered: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rangewsgi_pathsend_offered", default=False)


def offers_pathsend(scope: Scope) -> bool:
    """Whether ``scope`` lists the ASGI "Path Send" extension."""
    extensions = scope.get("extensions") or {}
    return PATHSEND in extensions


def _binary(filelike: Any) -> bool:
    """A file read as bytes: not a text wrapper, and no mode without ``b``."""
    if isinstance(filelike, io.TextIOBase):
        return False
    mode = getattr(filelike, "mode", "rb")
    return not isinstance(mode, str) or "b" in mode


def _regular_file_size(filelike: Any, path: str) -> int | None:
    """The size of the regular file ``filelike`` has open, if ``path`` names that very file
    (same device and inode), else None."""
    try:
        opened = os.fstat(filelike.fileno())
        named = os.stat(path)
    except (AttributeError, OSError, TypeError, ValueError, io.UnsupportedOperation):
        return None
    same = opened.st_dev == named.st_dev and opened.st_ino == named.st_ino
    return opened.st_size if same and stat.S_ISREG(opened.st_mode) else None


def _at_start(filelike: Any) -> bool:
    """The file is at position 0: Django streams from where it stands, path-send from 0."""
    try:
        return bool(filelike.tell() == 0)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


def pathsend_target(response: Any) -> str | None:
    """The absolute path whose path-send gives the bytes Django would stream, or None.

    Only a ``FileResponse`` whose streamed content is still its file (a middleware that
    replaced ``streaming_content``, such as ``GZipMiddleware``, clears ``file_to_stream``),
    over the whole of a regular file, whose ``Content-Length`` is that file's size.
    """
    if not isinstance(response, FileResponse):
        return None
    filelike = getattr(response, "file_to_stream", None)
    name = getattr(filelike, "name", None)
    if filelike is None or not isinstance(name, (str, bytes)) or not _binary(filelike):
        return None
    path = os.path.abspath(os.fsdecode(name))
    size = _regular_file_size(filelike, path)
    if size is None or not _at_start(filelike) or response.get("Content-Length") != str(size):
        return None
    return path


def start_message(response: Any) -> Message:
    """Django's ``http.response.start`` for ``response``: its fields, then one
    ``Set-Cookie`` per cookie, names with the case Django gives them."""
    fields: list[tuple[bytes, bytes]] = []
    for name, value in response.items():
        fields.append((_encoded(name, "ascii"), _encoded(value, "latin1")))
    for morsel in response.cookies.values():
        fields.append((b"Set-Cookie", morsel.output(header="").encode("ascii").strip()))
    return {"type": "http.response.start", "status": response.status_code, "headers": fields}


def _encoded(text: str | bytes, encoding: str) -> bytes:
    return bytes(text.encode(encoding) if isinstance(text, str) else text)


class PathSendASGIHandler(ASGIHandler):  # type: ignore[misc, unused-ignore]
    """Django's ``ASGIHandler``, sending a ``FileResponse`` over a file on disk as
    ``http.response.pathsend`` when the scope offers the extension."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _pathsend_offered.set(offers_pathsend(scope))
        try:
            await super().handle(scope, receive, send)
        finally:
            _pathsend_offered.reset(token)

    async def send_response(self, response: Any, send: Send) -> None:
        path = pathsend_target(response) if _pathsend_offered.get() else None
        if path is None:
            await super().send_response(response, send)
            return
        await send(start_message(response))
        # ASGI "Path Send" extension: the path is absolute; the file is sent whole.
        await send({"type": PATHSEND, "path": path})
        if _CLOSED_BY_SEND_RESPONSE:
            await sync_to_async(response.close, thread_sensitive=True)()


def get_asgi_application() -> PathSendASGIHandler:
    """``django.core.asgi.get_asgi_application()`` with path-send for file responses."""
    django.setup(set_prefix=False)
    return PathSendASGIHandler()
