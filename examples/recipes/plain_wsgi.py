"""Plain WSGI: a file through wsgi.file_wrapper, ranged by rangewsgi.

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 gunicorn plain_wsgi:application
"""

import os

from rangewsgi import RangeMiddleware

VIDEO = os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "video/mp4"),
                              ("Content-Length", str(os.path.getsize(VIDEO)))])
    # rangewsgi always offers a wsgi.file_wrapper; it seeks in the file for each range and
    # hands a single range back to the server's own wrapper (sendfile on gunicorn).
    return environ["wsgi.file_wrapper"](open(VIDEO, "rb"), 65536)


application = RangeMiddleware(app)
