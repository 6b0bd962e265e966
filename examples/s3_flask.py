"""Serve S3 objects through Flask with byte ranges: one ranged GetObject per part, never more.

The view answers with an ``S3Source`` as the response body; ``RangeMiddleware`` around the
Flask app asks it for exactly the ranges a client wants, each as one
``get_object(Range=..., IfMatch=etag)``, so a 100-byte range at the end of a 1 GiB object moves
100 bytes out of S3. A missing key is a 404; S3 unreachable or failing is a 502.

    python examples/s3_flask.py --bucket media --port 8000
    curl -r 1000-1999 http://127.0.0.1:8000/files/movie.mp4 -o part.bin

Needs ``pip install rangewsgi[s3] flask``; credentials come from boto3's usual places. Without
any, boto3 cannot sign a request: every answer is a 502, and the log says "Unable to locate
credentials". moto checks none, but boto3 still needs some; dummy ones will do:

    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
    python examples/s3_flask.py --bucket media --endpoint-url http://127.0.0.1:5000  # moto
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
from flask import Flask, Response, abort
from werkzeug.serving import run_simple

from rangewsgi import RangeMiddleware
from rangewsgi.sources.s3 import S3Source

logger = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """``exc`` and the error behind it (botocore's), on one line whatever the key holds."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    cause = exc.__cause__
    return f"{text} (from {type(cause).__name__})" if cause is not None else text


def make_app(client: Any, bucket: str) -> Flask:
    """The Flask app serving ``bucket`` under ``/files/<key>``, wrapped in RangeMiddleware."""
    app = Flask(__name__)

    @app.get("/files/<path:key>")
    def serve(key: str) -> Response:
        try:
            source = S3Source(client, bucket, key)
        except FileNotFoundError:
            abort(404)
        except OSError as exc:
            # The client gets a bare 502; the log says why (no credentials, endpoint down...).
            logger.warning("502 for key %r: S3 failed: %s", key[:200], describe(exc))
            abort(502)
        # direct_passthrough: werkzeug hands the source itself to the WSGI layer, where the
        # middleware reads the ranges out of it. The length and validators go in the headers
        # too: for a HEAD request werkzeug hands on an empty body instead of the source.
        headers = {"Content-Length": str(source.size)}
        if source.etag:
            headers["ETag"] = source.etag
        if source.last_modified:
            headers["Last-Modified"] = source.last_modified
        if source.content_encoding:  # stored encoded: ranges count the stored bytes
            headers["Content-Encoding"] = source.content_encoding
        return Response(source, direct_passthrough=True, headers=headers,
                        content_type=source.content_type or "application/octet-stream")

    app.wsgi_app = RangeMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


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
    print(f"serving s3://{args.bucket} on http://{args.host}:{args.port}/files/<key>",
          flush=True)
    run_simple(args.host, args.port, make_app(client, args.bucket), threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
