"""Django: a FileResponse, ranged by wrapping the WSGI application.

In a project made by `django-admin startproject mysite`, the settings go in
mysite/settings.py, the view and urlpatterns in your app, and the last line is the end of
mysite/wsgi.py (which `runserver` serves too, through settings.WSGI_APPLICATION).

Run: RANGEWSGI_EXAMPLE_FILE=video.mp4 gunicorn django_app:application
"""

import os
from pathlib import Path

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import FileResponse, HttpRequest
from django.urls import path

from rangewsgi import RangeMiddleware

VIDEO = Path(os.environ.get("RANGEWSGI_EXAMPLE_FILE", "video.mp4")).resolve()

settings.configure(
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "only-for-this-example"),
)


def video(request: HttpRequest) -> FileResponse:
    # A plain FileResponse: no ETag, no Last-Modified. rangewsgi adds both (from the file's
    # size and modification time), so revalidation (304) and resuming (If-Range) work.
    return FileResponse(open(VIDEO, "rb"), content_type="video/mp4")


urlpatterns = [path("video", video)]

application = RangeMiddleware(get_wsgi_application())
