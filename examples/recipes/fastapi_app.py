"""FastAPI: Starlette's FileResponse, ranged by the ASGI middleware.

FileResponse sends the file as an ASGI path-send whenever the scope offers it, and the
middleware offers it: ranges are then read by seeking, and the file gets an ETag and a
Last-Modified. The route declares HEAD as well as GET: @app.get alone answers HEAD with 405.

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 uvicorn fastapi_app:app
"""

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

from rangewsgi.asgi import RangeMiddleware

VIDEO = Path(os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")).resolve()

app = FastAPI()


@app.api_route("/video", methods=["GET", "HEAD"])
async def video() -> FileResponse:
    return FileResponse(VIDEO, media_type="video/mp4")


app.add_middleware(RangeMiddleware)
