"""Flask: send_file, send_from_directory and a Response over a file, ranged by rangewsgi.

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 gunicorn flask_app:app
"""

import os
from pathlib import Path

from flask import Flask, Response, request, send_file, send_from_directory
from werkzeug.wsgi import wrap_file

from rangewsgi import RangeMiddleware

VIDEO = Path(os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")).resolve()

app = Flask(__name__)
app.wsgi_app = RangeMiddleware(app.wsgi_app)  # `app` stays what you run


@app.get("/video")
def video() -> Response:
    # conditional=False: Flask sends a 200 (with ETag and Last-Modified) and rangewsgi
    # answers Range, If-Range, If-None-Match and If-Modified-Since.
    return send_file(VIDEO, mimetype="video/mp4", conditional=False)


@app.get("/media/<path:name>")
def media(name: str) -> Response:
    return send_from_directory(VIDEO.parent, name, conditional=False)


@app.get("/stream")
def stream() -> Response:
    # wrap_file keeps the file visible to rangewsgi (it seeks) and to the server (sendfile);
    # direct_passthrough stops Werkzeug from wrapping it again; the length must be given.
    f = open(VIDEO, "rb")
    response = Response(wrap_file(request.environ, f), mimetype="video/mp4",
                        direct_passthrough=True)
    response.content_length = os.fstat(f.fileno()).st_size
    return response
