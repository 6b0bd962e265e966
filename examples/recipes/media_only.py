"""Range only media: a predicate that opts every other response out.

By default every 200 of known length is ranged, dynamic HTML included (legal, and harmless).
A media site may prefer to opt in: audio and video by Content-Type, and anything under
/media/ by path. Other responses pass through as the app sent them, without Accept-Ranges.

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 gunicorn media_only:application
"""

import os

from rangewsgi import RangeMiddleware

VIDEO = os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")
PAGE = b"<!doctype html><title>Video</title><video src=/video controls></video>\n"


def only_media(environ, headers, length):
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    return (content_type.startswith(("video/", "audio/"))
            or environ.get("PATH_INFO", "").startswith("/media/"))


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/video":
        start_response("200 OK", [("Content-Type", "video/mp4"),
                                  ("Content-Length", str(os.path.getsize(VIDEO)))])
        return environ["wsgi.file_wrapper"](open(VIDEO, "rb"), 65536)
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(PAGE)))])
    return [PAGE]


application = RangeMiddleware(app, predicate=only_media)
