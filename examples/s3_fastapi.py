"""Serve S3 objects through FastAPI with byte ranges: one ranged GetObject per part, never more.

The route answers with a ``SourceResponse`` over an ``S3Source``; ``RangeMiddleware`` (the
ASGI one) asks the source for exactly the ranges a client wants, each as one
``get_object(Range=..., IfMatch=etag)`` in a worker thread, so a 100-byte range at the end
of a 1 GiB object moves 100 bytes out of S3 and the event loop never waits for S3. A missing
key is a 404; S3 unreachable or failing is a 502.

    python examples/s3_fastapi.py --bucket media --port 8000
    curl -r 1000-1999 http://127.0.0.1:8000/files/movie.mp4 -o part.bin

Needs ``pip install rangewsgi[s3] fastapi uvicorn``; credentials come from boto3's usual
places (against moto, dummy ones will do: ``AWS_ACCESS_KEY_ID=testing``
``AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException

from rangewsgi.asgi import RangeMiddleware, SourceResponse
from rangewsgi.sources.s3 import S3Source

logger = logging.getLogger(__name__)


def make_app(client: Any, bucket: str) -> FastAPI:
    """The FastAPI app serving ``bucket`` under ``/files/<key>``, inside RangeMiddleware."""
    app = FastAPI()
    app.add_middleware(RangeMiddleware)

    # A plain ``def``: FastAPI runs it in a worker thread, where S3Source's HeadObject may
    # wait for S3 without holding up the event loop.
    @app.api_route("/files/{key:path}", methods=["GET", "HEAD"])
    def serve(key: str) -> SourceResponse:
        try:
            source = S3Source(client, bucket, key)
        except FileNotFoundError:
            raise HTTPException(404) from None
        except OSError as exc:
            # The client gets a bare 502; the log says why (no credentials, endpoint down...).
            logger.warning("502 for key %r: S3 failed: %s", key[:200], exc)
            raise HTTPException(502) from None
        # Content-Length, Content-Type, Content-Encoding, ETag and Last-Modified come from
        # the object; the middleware answers Range, If-Range, If-None-Match... from them.
        return SourceResponse(source)

    return app


def main(argv: list[str] | None = None) -> int:
    """The command line: serve ``--bucket`` with uvicorn."""
    import argparse

    import boto3  # type: ignore[import-untyped,unused-ignore]
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--endpoint-url", help="an S3-compatible endpoint (moto, MinIO...)")
    parser.add_argument("--region", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
    client = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region)
    uvicorn.run(make_app(client, args.bucket), host=args.host, port=args.port,
                log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
