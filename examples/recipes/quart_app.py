"""Quart: send_file sent as a path, ranged by the ASGI middleware.

Quart streams a send_file body from byte 0 in 8 KiB reads, which the middleware could only
slice; its own ranges (send_file(..., conditional=True)) answer one range only: a multi-range
gets 416 and a suffix range (bytes=-100) a 500 in Quart 0.22. Sent as an ASGI path-send (which
the middleware offers to the application), the file is read by seeking instead.
PathSendConnection below is Quart's ASGI connection, sending the body of a whole-file
send_file as a path-send when the scope offers one; Quart's own code sends everything else.

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 uvicorn quart_app:app
"""

import os
from pathlib import Path
from typing import Any

from quart import Quart, send_file
from quart.asgi import ASGIHTTPConnection
from quart.utils import encode_headers
from quart.wrappers import Response
from quart.wrappers.response import FileBody

from rangewsgi.asgi import RangeMiddleware

VIDEO = Path(os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")).resolve()
PATHSEND = "http.response.pathsend"


def whole_file(response: Any) -> Path | None:
    """The file a response sends whole (a send_file body not narrowed to a range), or None."""
    body = getattr(response, "response", None)
    if not isinstance(response, Response) or not isinstance(body, FileBody):
        return None
    return body.file_path if body.begin == 0 and body.end == body.size else None


class PathSendConnection(ASGIHTTPConnection):
    """Quart's ASGI HTTP connection, sending a whole file as a path-send where offered."""

    async def _send_response(self, send: Any, response: Any) -> None:
        path = whole_file(response)
        if path is None or PATHSEND not in (self.scope.get("extensions") or {}):
            await super()._send_response(send, response)
            return
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": encode_headers(response.headers)})
        await send({"type": PATHSEND, "path": os.path.abspath(path)})


app = Quart(__name__)
app.asgi_http_class = PathSendConnection


@app.route("/video")
async def video() -> Response:
    return await send_file(VIDEO, mimetype="video/mp4")


app.asgi_app = RangeMiddleware(app.asgi_app)  # `app` stays what you run
