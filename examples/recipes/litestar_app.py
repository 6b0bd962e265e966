"""Litestar: its File response sent as a path, ranged by the ASGI middleware.

Litestar's File streams the file from byte 0, which the middleware could only slice. Sent as
an ASGI path-send (which the middleware offers to the application), the file is read by
seeking instead: PathSendFile below is Litestar's File, answered with a path-send when the
scope offers one and the file is on the local disk; Litestar's own code sends every other
answer (its HEAD, its other file systems).

The middleware goes in Litestar's own middleware list: wrapping the Litestar object itself
in RangeMiddleware hides it from `litestar run`. Options go through DefineMiddleware:
middleware=[DefineMiddleware(RangeMiddleware, max_ranges=20)].

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 litestar --app litestar_app:app run
"""

import os
from pathlib import Path
from typing import Any

from litestar import Litestar, route
from litestar.file_system import BaseLocalFileSystem
from litestar.response import File
from litestar.response.file import ASGIFileResponse
from litestar.types import Receive, Scope, Send

from rangewsgi.asgi import RangeMiddleware

VIDEO = Path(os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")).resolve()
PATHSEND = "http.response.pathsend"


class PathSend:
    """A Litestar file response that sends its file as an ASGI path-send where it can."""

    def __init__(self, response: ASGIFileResponse) -> None:
        self.response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.response
        local = isinstance(response.adapter.file_system, BaseLocalFileSystem)
        offered = PATHSEND in (scope.get("extensions") or {})
        if response.is_head_response or not local or not offered:
            await response(scope, receive, send)
            return
        await response.start_response(send=send)  # Litestar's fields: ETag, Last-Modified...
        await send({"type": PATHSEND, "path": os.path.abspath(response.file_path)})
        await response.after_response()  # background tasks, as after a streamed body


class PathSendFile(File):
    """Litestar's File response, sent as a path-send where the scope offers it."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        return PathSend(super().to_asgi_response(*args, **kwargs))


@route("/video", http_method=["GET", "HEAD"])  # @get alone answers HEAD with 405
async def video() -> PathSendFile:
    return PathSendFile(VIDEO, media_type="video/mp4", content_disposition_type="inline")


app = Litestar(route_handlers=[video], middleware=[RangeMiddleware])
