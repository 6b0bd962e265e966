"""Serve S3 objects through Django with byte ranges: one ranged GetObject per part, never more.

The view answers with a ``SourceResponse``: a ``StreamingHttpResponse`` over an ``S3Source``
that also shows the source's ``size`` and ``read_range``, so ``RangeMiddleware`` around
Django's WSGI handler reads exactly the ranges a client wants, each as one
``get_object(Range=..., IfMatch=etag)``, and streams the whole object only for a plain GET.
Closing the response (the server does) closes the source and ends Django's request as usual.
A missing key is a 404; S3 unreachable or failing is a 502.

    python examples/s3_django.py --bucket media --port 8000
    curl -r 1000-1999 http://127.0.0.1:8000/files/movie.mp4 -o part.bin

In a project, ``SourceResponse`` and the view go in an app, and ``wsgi.py`` wraps
``get_wsgi_application()`` in ``RangeMiddleware``. Needs ``pip install rangewsgi[s3] django``;
credentials come from boto3's usual places. Without any, boto3 cannot sign a request: every
answer is a 502, and the log says "Unable to locate credentials". moto checks none, but boto3
still needs some; dummy ones will do:

    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
    python examples/s3_django.py --bucket media --endpoint-url http://127.0.0.1:5000  # moto
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path
from werkzeug.serving import run_simple

from rangewsgi import RangeMiddleware
from rangewsgi.sources.s3 import S3Source

STORE: dict[str, Any] = {}  # the client and bucket the view reads from (set by make_app)
logger = logging.getLogger(__name__)


class SourceResponse(StreamingHttpResponse):
    """A streaming response over a ranged source that the middleware can read ranges from."""

    def __init__(self, source: Any, **kwargs: Any) -> None:
        super().__init__(source, **kwargs)  # iterated (one whole GET) only for a plain 200
        self.size: int = source.size
        self.read_range = source.read_range
        self.etag: str | None = getattr(source, "etag", None)
        self.last_modified: str | None = getattr(source, "last_modified", None)


def describe(exc: BaseException) -> str:
    """``exc`` and the error behind it (botocore's), on one line whatever the key holds."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    cause = exc.__cause__
    return f"{text} (from {type(cause).__name__})" if cause is not None else text


def serve(request: HttpRequest, key: str) -> HttpResponse | StreamingHttpResponse:
    try:
        source = S3Source(STORE["client"], STORE["bucket"], key)
    except FileNotFoundError:
        return HttpResponse(b"not found\n", status=404, content_type="text/plain")
    except OSError as exc:
        # The client gets a bare 502; the log says why (no credentials, endpoint down...).
        logger.warning("502 for key %r: S3 failed: %s", key[:200], describe(exc))
        return HttpResponse(b"bad gateway\n", status=502, content_type="text/plain")
    response = SourceResponse(source,
                              content_type=source.content_type or "application/octet-stream")
    if source.content_encoding:  # stored encoded: ranges count the stored bytes
        response["Content-Encoding"] = source.content_encoding
    return response


urlpatterns = [path("files/<path:key>", serve)]


def make_app(client: Any, bucket: str) -> RangeMiddleware:
    """Django's WSGI handler serving ``bucket`` under ``/files/<key>``, with ranges."""
    STORE.update(client=client, bucket=bucket)
    if not settings.configured:
        settings.configure(DEBUG=False, ALLOWED_HOSTS=["127.0.0.1", "localhost"],
                           ROOT_URLCONF=__name__, SECRET_KEY="s3-django-example",
                           MIDDLEWARE=[], INSTALLED_APPS=[], USE_TZ=True)
        django.setup()
    from django.core.wsgi import get_wsgi_application

    return RangeMiddleware(get_wsgi_application())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--endpoint-url", help="an S3-compatible endpoint (moto, MinIO...)")
    parser.add_argument("--region", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
    client = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region)
    app = make_app(client, args.bucket)
    print(f"serving s3://{args.bucket} on http://{args.host}:{args.port}/files/<key>",
          flush=True)
    run_simple(args.host, args.port, app, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
