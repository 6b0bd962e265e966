"""An S3 object as a ranged source, through a boto3 client.

``S3Source(client, bucket, key)`` asks ``head_object`` once for the size, ``ETag``,
``Last-Modified`` and (in a versioned bucket) the version id, then reads each part with one
``get_object(Range=..., IfMatch=etag)``. In a versioned bucket every read names that version,
so the object can be replaced and the response still carries one version only; elsewhere a
replaced object fails the ``IfMatch`` (412) and the read raises ``SourceChanged``. Each answer
is checked (status, ``ContentRange``, ``ETag``, length) and streamed in ``chunk_size`` pieces;
an aborted body is closed, never handed back to the pool half read.

Needs ``boto3`` (``pip install rangewsgi[s3]``). Timeouts and retries are the client's
(``botocore.config.Config(connect_timeout=..., read_timeout=..., retries=...)``).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Mapping
from typing import Any

try:
    from botocore import exceptions as _boto  # type: ignore[import-untyped,unused-ignore]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("rangewsgi.sources.s3 needs boto3: pip install rangewsgi[s3]") from exc

from ..digest_fields import s3_repr_digest
from ..httpdate import format_http_date
from . import SourceChanged, UpstreamError
from ._checks import check_content_range, check_range, translated

__all__ = ["S3Source", "UpstreamError"]


def _client_error(where: str, exc: Any) -> OSError:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    text = f"{where}: {code or status}: {error.get('Message') or exc}"
    if status == 404 or code in ("404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion"):
        return FileNotFoundError(errno.ENOENT, text)
    if status in (401, 403) or code in ("403", "AccessDenied"):
        return PermissionError(errno.EACCES, text)
    if status in (412, 416) or code in ("PreconditionFailed", "InvalidRange"):
        return SourceChanged(text)
    return UpstreamError(text, status=status, code=code or None)


def _as_oserror(where: str, exc: Exception) -> OSError | None:
    """botocore's errors as the OSError subclasses every source raises; None for others."""
    if isinstance(exc, _boto.ClientError):
        return _client_error(where, exc)
    if isinstance(exc, (_boto.ReadTimeoutError, _boto.ConnectTimeoutError)):
        return TimeoutError(f"{where}: timed out: {exc}")
    if isinstance(exc, (_boto.ConnectionError, _boto.ConnectionClosedError,
                        _boto.ResponseStreamingError, _boto.IncompleteReadError)):
        return ConnectionError(f"{where}: connection broken: {exc}")
    if isinstance(exc, _boto.BotoCoreError):
        return UpstreamError(f"{where}: {exc}")
    if isinstance(exc, RecursionError):
        # botocore follows an S3 redirect (RFC 9110 15.4) that names no region by asking the
        # bucket's region with another request, which it redirects the same way: an endpoint
        # that redirects every request recurses until Python's limit.
        return UpstreamError(f"{where}: redirected without end (botocore: {exc})")
    return None


class S3Source:
    """An S3 object, read with one conditional ranged ``get_object`` per part.

    Making one asks ``head_object`` once, so that a missing object raises
    ``FileNotFoundError`` in the app, before any response header is sent. Every failure is
    an ``OSError``: ``FileNotFoundError`` (404, ``NoSuchKey``, ``NoSuchBucket``),
    ``PermissionError`` (401, 403), ``SourceChanged`` (the object was replaced),
    ``ConnectionError``, ``TimeoutError``, else ``UpstreamError`` (a missing credential
    included: botocore's error is its ``__cause__``).

    Args:
        client: a boto3 S3 client; its configuration sets the timeouts and retries.
        bucket: the bucket's name.
        key: the object's key.
        version_id: read this version of the object (a versioned bucket).
        pin_version: in a versioned bucket, read the version the ``head_object`` found on
            every later request, so that a replaced object is still served whole.
        extra_args: more arguments for ``head_object`` and ``get_object``
            (``SSECustomerKey``, ``RequestPayer``, ``ExpectedBucketOwner``...).
        chunk_size: bytes per read of an answer's body.
        max_skip: an endpoint that ignores ``Range`` is skipped through to the range when it
            starts within this many bytes; further, the read raises ``UpstreamError``.

    Attributes:
        size (int): the object's length in bytes.
        etag (str | None): its ``ETag``, as S3 sends it (quoted).
        last_modified (str | None): its ``LastModified``, as an HTTP-date.
        content_type (str | None): its ``ContentType``.
        content_encoding (str | None): its ``ContentEncoding`` (ranges count stored bytes).
        repr_digest (str | None): a ``Repr-Digest`` value (RFC 9530 3) from the object's
            full-object SHA-256 checksum, when it has one.
        version_id (str | None): the version read, in a versioned bucket.
    """

    def __init__(self, client: Any, bucket: str, key: str, *, version_id: str | None = None,
                 pin_version: bool = True, extra_args: Mapping[str, Any] | None = None,
                 chunk_size: int = 64 * 1024, max_skip: int = 8 * 1024 * 1024) -> None:
        if chunk_size <= 0 or max_skip < 0:
            raise ValueError("chunk_size must be positive and max_skip not negative")
        self.client = client
        self.bucket = bucket
        self.key = key
        self.chunk_size = chunk_size
        self.max_skip = max_skip
        self.name = f"s3://{bucket}/{key}"
        self._args: dict[str, Any] = {**(extra_args or {}), "Bucket": bucket, "Key": key}
        if version_id is not None:
            self._args["VersionId"] = version_id
        self._open: set[Any] = set()
        self.closed = False
        with translated(self.name, _as_oserror):
            # ChecksumMode: S3 answers with the object's checksum only when asked.
            head = client.head_object(**{"ChecksumMode": "ENABLED", **self._args})
        self.size: int = int(head["ContentLength"])
        self.etag: str | None = head.get("ETag")
        modified = head.get("LastModified")
        self.last_modified: str | None = (format_http_date(modified.timestamp())
                                          if modified is not None else None)
        self.content_type: str | None = head.get("ContentType")
        self.content_encoding: str | None = head.get("ContentEncoding")
        self.repr_digest: str | None = s3_repr_digest(head.get("ChecksumSHA256"),
                                                      head.get("ChecksumType"))
        self.version_id: str | None = head.get("VersionId") or version_id
        if pin_version and self.version_id and self.version_id != "null":
            self._args["VersionId"] = self.version_id
        if self.etag:
            self._args["IfMatch"] = self.etag

    # -- the protocol --

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        """Bytes ``[start, stop)``: one ``get_object`` with ``Range``, made when iterated."""
        check_range(self.name, self.closed, start, stop, self.size)
        return self._ranged(start, stop)

    def __iter__(self) -> Iterator[bytes]:
        """The whole object: one conditional ``get_object`` without ``Range``."""
        if self.size == 0:
            return
        response = self._get(None)
        body = response["Body"]
        try:
            if response.get("ContentRange"):
                raise UpstreamError(f"{self.name}: partial answer to a whole-object GET")
            self._check(response, self.size)
            yield from self._body(body, self.size)
        finally:
            self._finish(body)

    def close(self) -> None:
        """Close any body still open (its connection is dropped, not pooled half read)."""
        self.closed = True
        for body in list(self._open):
            self._finish(body)

    def __enter__(self) -> S3Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading --

    def _get(self, byte_range: str | None) -> Any:
        if self.closed:
            raise ValueError(f"{self.name}: read from a closed source")
        args = dict(self._args)
        if byte_range is not None:
            args["Range"] = byte_range
        with translated(self.name, _as_oserror):
            response = self.client.get_object(**args)
        self._open.add(response["Body"])
        return response

    def _ranged(self, start: int, stop: int) -> Iterator[bytes]:
        response = self._get(f"bytes={start}-{stop - 1}")
        body = response["Body"]
        try:
            content_range = response.get("ContentRange")
            if content_range:
                check_content_range(self.name, content_range, start, stop, self.size,
                                    field="ContentRange")
                self._check(response, stop - start)
            else:
                # No Content-Range: the whole object (an endpoint that ignores Range). Skip
                # up to ``start`` in-stream if that is cheap enough, else fail before a byte.
                self._check(response, self.size)
                if start > self.max_skip:
                    raise UpstreamError(f"{self.name}: endpoint ignored Range; skipping "
                                        f"{start} bytes exceeds max_skip={self.max_skip}",
                                        status=self._status(response))
                for _ in self._body(body, start, last=False):
                    pass
            yield from self._body(body, stop - start, last=bool(content_range))
        finally:
            self._finish(body)

    def _body(self, body: Any, count: int, last: bool = True) -> Iterator[bytes]:
        """Exactly ``count`` bytes of ``body``; when they are the ``last`` of it, its end is
        checked (length, checksum) before the final chunk goes out, so a bad end aborts the
        response while it is still short."""
        remaining = count
        while remaining:
            with translated(self.name, _as_oserror):
                data = body.read(min(self.chunk_size, remaining))
            if not data:
                raise ConnectionError(f"{self.name}: body ended {remaining} bytes short of "
                                      f"{count}")
            if len(data) > remaining:  # never past what was asked for
                raise UpstreamError(f"{self.name}: body longer than announced")
            remaining -= len(data)
            if not remaining and last:
                with translated(self.name, _as_oserror):
                    extra = body.read(1)  # b"" at the end; botocore verifies as it sees it
                if extra:
                    raise UpstreamError(f"{self.name}: body longer than announced")
            yield data

    # -- checks --

    @staticmethod
    def _status(response: Mapping[str, Any]) -> int | None:
        status: int | None = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status

    def _check(self, response: Mapping[str, Any], count: int) -> None:
        etag = response.get("ETag")
        if self.etag and etag and etag != self.etag:
            raise SourceChanged(f"{self.name}: ETag is now {etag}, was {self.etag}")
        version = response.get("VersionId")
        if "VersionId" in self._args and version and version != self._args["VersionId"]:
            raise SourceChanged(f"{self.name}: version is now {version}, was "
                                f"{self._args['VersionId']}")
        length = response.get("ContentLength")
        if length is not None and int(length) != count:
            if count == self.size:
                raise SourceChanged(f"{self.name}: size is now {length}, was {self.size}")
            raise UpstreamError(f"{self.name}: ContentLength {length} for {count} bytes",
                                status=self._status(response))

    def _finish(self, body: Any) -> None:
        """A fully read body has already gone back to the pool; closing it then is a no-op.
        A half-read one is closed, dropping its connection."""
        self._open.discard(body)
        body.close()
