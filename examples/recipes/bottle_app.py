"""Bottle: an open file returned from a route, ranged by rangewsgi.

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 gunicorn bottle_app:application
  or RANGEWSGI_EXAMPLE_FILE=video.mp4 python bottle_app.py  (Bottle's own server)
"""

import os

import bottle

from rangewsgi import RangeMiddleware

VIDEO = os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")

app = bottle.Bottle()


@app.get("/video")
def video():
    bottle.response.content_type = "video/mp4"
    bottle.response.set_header("Content-Length", str(os.path.getsize(VIDEO)))
    return open(VIDEO, "rb")  # Bottle hands it to wsgi.file_wrapper: ranged, zero-copy


application = RangeMiddleware(app)

if __name__ == "__main__":  # not when a server (gunicorn, waitress) imports the module
    bottle.run(application, host="127.0.0.1", port=8080)
