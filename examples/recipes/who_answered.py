"""Who answered: rangewsgi logs one DEBUG line per request, with its decision and reason.

/video is a 200 that rangewsgi ranges; /own is Flask's send_file with its default
conditional=True, where Werkzeug makes the 206 itself and rangewsgi passes it through.

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 gunicorn who_answered:app
"""

import logging
import os

from flask import Flask, Response, send_file

from rangewsgi import RangeMiddleware

logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
logging.getLogger("rangewsgi").setLevel(logging.DEBUG)

VIDEO = os.path.abspath(os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4"))

app = Flask(__name__)
app.wsgi_app = RangeMiddleware(app.wsgi_app)


@app.get("/video")
def video() -> Response:
    return send_file(VIDEO, mimetype="video/mp4", conditional=False)


@app.get("/own")
def own() -> Response:
    return send_file(VIDEO, mimetype="video/mp4")
