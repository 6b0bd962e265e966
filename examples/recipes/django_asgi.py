"""Django under ASGI: a FileResponse sent as a path, ranged by wrapping the ASGI application.

rangewsgi.django_asgi.get_asgi_application() stands in for Django's own: a FileResponse over a
file on disk goes out as an ASGI path-send, which the middleware answers by seeking, with an
ETag and a Last-Modified made from the file (so 304 and If-Range work). Django's own handler
streams the file, which the middleware can only slice from byte 0, without validators.

In a project made by `django-admin startproject mysite`, the settings go in
mysite/settings.py, the view and urlpatterns in your app, and the last lines are the end of
mysite/asgi.py.

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 uvicorn django_asgi:application
"""

import os
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpRequest
from django.urls import path

from rangewsgi.asgi import RangeMiddleware
from rangewsgi.django_asgi import get_asgi_application

VIDEO = Path(os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")).resolve()

settings.configure(
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "only-for-this-example"),
)


def video(request: HttpRequest) -> FileResponse:
    # Django closes the file once the response is sent.
    return FileResponse(open(VIDEO, "rb"), content_type="video/mp4")


urlpatterns = [path("video", video)]

application = RangeMiddleware(get_asgi_application())
