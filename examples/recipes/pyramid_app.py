"""Pyramid: a FileResponse with conditional_response off, ranged by rangewsgi.

`main` is the application factory of a Pyramid project; pyramid.ini wraps what it returns
in the rangewsgi filter (or wrap it here: `return RangeMiddleware(config.make_wsgi_app())`).

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 PYTHONPATH=. pserve pyramid.ini http_port=6543
"""

import os

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import FileResponse

VIDEO = os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")


def video(request: Request) -> FileResponse:
    response = FileResponse(VIDEO, request=request, content_type="video/mp4")
    # WebOb would answer Range (first range only) and If-None-Match itself; leave both,
    # and If-Range, to rangewsgi.
    response.conditional_response = False
    return response


def main(global_config, **settings):
    with Configurator(settings=settings) as config:
        config.add_route("video", "/video")
        config.add_view(video, route_name="video")
        return config.make_wsgi_app()
