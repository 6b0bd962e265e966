"""Falcon: a file in resp.stream, ranged by rangewsgi.

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 gunicorn falcon_app:application
"""

import os

import falcon

from rangewsgi import RangeMiddleware

VIDEO = os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")


class Video:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "video/mp4"
        resp.stream = open(VIDEO, "rb")
        resp.content_length = os.path.getsize(VIDEO)


app = falcon.App()
app.add_route("/video", Video())
application = RangeMiddleware(app)
