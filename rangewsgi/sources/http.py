"""A resource on another HTTP server as a ranged source, through urllib3.

``HTTPSource(url)`` asks the upstream once (``HEAD``) for the size and validators, then reads
each part with one ``GET`` carrying ``Range`` and a precondition on the version it started
with: ``If-Match`` and ``If-Range`` on a strong ``ETag``, else ``If-Unmodified-Since`` on
``Last-Modified``. A replaced resource answers ``412`` and the read raises ``SourceChanged``;
every answer is checked (status, ``Content-Range``, validators, length) so that no byte of
another version or another range is ever yielded. Bodies are streamed in ``chunk_size``
pieces; connections go back to the pool only after a complete, clean read.

Redirects (RFC 9110 15.4) are followed by this module, never by urllib3, so that each hop is
checked: by default only within the origin of ``url`` (RFC 6454 4: scheme, host, port), and a
redirect to another origin raises ``UpstreamError``; ``redirects="any"`` follows it too, but the
caller's ``headers`` (credentials, say) go to the origin of ``url`` only, on the first request
and on every later one; ``redirects="none"`` follows none. Where the ``HEAD`` ends is where
later requests go.

Needs ``urllib3`` (``pip install rangewsgi[http]``).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator, Mapping
from typing import Literal
from urllib.parse import urljoin, urlsplit

try:
    import urllib3
    from urllib3.exceptions import HTTPError as _Urllib3Error
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
    from urllib3.exceptions import TimeoutError as _Urllib3Timeout
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("rangewsgi.sources.http needs urllib3: pip install rangewsgi[http]"
                      ) from exc

from ..digest_fields import secure_repr_digest
from . import SourceChanged, UpstreamError
from ._checks import CONTENT_RANGE, check_content_range, check_range, translated

__all__ = ["DEFAULT_TIMEOUT", "MAX_REDIRECTS", "HTTPSource", "Redirects", "UpstreamError",
           "default_pool"]

DEFAULT_TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)
"""Connect and read timeouts (seconds); a read timeout bounds each wait for the next bytes."""

Redirects = Literal["same-origin", "any", "none"]
"""Which redirects ``HTTPSource`` follows: within the origin of its ``url`` (the default), to
any origin (without the caller's headers there), or none."""

MAX_REDIRECTS = 5
"""Redirects followed for one request, at most."""

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})  # RFC 9110 15.4, with a Location
_POLICIES: tuple[Redirects, ...] = ("same-origin", "any", "none")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DRAIN_LIMIT = 64 * 1024  # a redirect's body up to this size is read to keep the connection
_pool_lock = threading.Lock()
_pool: urllib3.PoolManager | None = None


def default_pool() -> urllib3.PoolManager:
    """The process-wide pool used when no ``pool`` is given (made on first use)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = urllib3.PoolManager(num_pools=32, maxsize=16, block=False, retries=False)
        return _pool


def _as_oserror(url: str, exc: Exception) -> OSError | None:
    """urllib3's errors as the OSError subclasses every source raises; None for others."""
    if not isinstance(exc, _Urllib3Error):
        return None
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        reason: Exception = exc.reason
        if not isinstance(reason, _Urllib3Error):
            return UpstreamError(f"{url}: {reason}")
        exc = reason
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError: test it first
        return ConnectionError(f"{url}: cannot connect: {exc}")
    if isinstance(exc, _Urllib3Timeout):
        return TimeoutError(f"{url}: timed out: {exc}")
    if isinstance(exc, ProtocolError):
        return ConnectionError(f"{url}: connection broken: {exc}")
    return UpstreamError(f"{url}: {exc}")


def _origin(url: str) -> tuple[str, str, int | None]:
    """RFC 6454 4: the scheme, host and port of ``url`` (the scheme's default port if none)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise UpstreamError(f"{url}: invalid port") from None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _encoding(resp: urllib3.BaseHTTPResponse) -> str | None:
    value = resp.headers.get("Content-Encoding", "").strip().lower()
    return None if value in ("", "identity") else value


class HTTPSource:
    """A resource on another HTTP server, read with one conditional ranged GET per part.

    Making one asks the upstream once (``HEAD``, or ``Range: bytes=0-0`` where ``HEAD`` is
    refused), so that a missing resource raises ``FileNotFoundError`` in the app, before any
    response header is sent. Every failure is an ``OSError``: ``FileNotFoundError`` (404,
    410), ``PermissionError`` (401, 403), ``SourceChanged`` (412, 416, other validators),
    ``ConnectionError``, ``TimeoutError``, else ``UpstreamError`` with the upstream's
    ``status``.

    Args:
        url: the resource's ``http://`` or ``https://`` URL.
        pool: the ``urllib3.PoolManager`` to send through (default: one shared by the
            process, ``default_pool()``).
        headers: fields sent with every request to the origin of ``url`` (``Authorization``,
            say), and never to another origin.
        timeout: seconds, or a ``urllib3.Timeout`` (default ``DEFAULT_TIMEOUT``: 5 s to
            connect, 30 s for each wait for bytes).
        chunk_size: bytes per read of an answer's body.
        max_skip: an upstream that ignores ``Range`` is skipped through to the range when it
            starts within this many bytes; further, the read raises ``UpstreamError``.
        redirects: ``"same-origin"`` (default) follows redirects within the origin of ``url``
            (scheme, host and port) and refuses one to another origin with ``UpstreamError``;
            ``"any"`` follows that too, without ``headers``; ``"none"`` follows none. At most
            ``MAX_REDIRECTS`` per request.

    Attributes:
        url (str): where requests go: ``url``, or where the redirects of the first led.
        size (int): the resource's length in bytes.
        etag (str | None): its ``ETag`` field.
        last_modified (str | None): its ``Last-Modified`` field.
        content_type (str | None): its ``Content-Type`` field.
        content_encoding (str | None): its ``Content-Encoding`` (ranges count those bytes).
        repr_digest (str | None): its ``Repr-Digest`` (RFC 9530 3), secure algorithms only.
    """

    def __init__(self, url: str, *, pool: urllib3.PoolManager | None = None,
                 headers: Mapping[str, str] | None = None,
                 timeout: float | urllib3.Timeout = DEFAULT_TIMEOUT,
                 chunk_size: int = 64 * 1024, max_skip: int = 8 * 1024 * 1024,
                 redirects: Redirects = "same-origin") -> None:
        if chunk_size <= 0 or max_skip < 0:
            raise ValueError("chunk_size must be positive and max_skip not negative")
        if redirects not in _POLICIES:
            raise ValueError(f"redirects must be one of {', '.join(_POLICIES)}, "
                             f"not {redirects!r}")
        self.url = url
        self.redirects = redirects
        self._origin = _origin(url)
        self.pool = pool if pool is not None else default_pool()
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.max_skip = max_skip
        self._headers = dict(headers or {})  # for the origin of ``url`` only
        self._open: set[urllib3.BaseHTTPResponse] = set()
        self.closed = False
        self.etag: str | None = None
        self.last_modified: str | None = None
        self.content_type: str | None = None
        self.content_encoding: str | None = None
        self.repr_digest: str | None = None
        self.size = self._learn()
        self._conditions = self._preconditions()

    # -- the protocol --

    def read_range(self, start: int, stop: int) -> Iterator[bytes]:
        """Bytes ``[start, stop)``: one GET with ``Range``, made when first iterated."""
        check_range(self.url, self.closed, start, stop, self.size)
        return self._ranged(start, stop)

    def __iter__(self) -> Iterator[bytes]:
        """The whole resource: one conditional GET without ``Range``."""
        self._check_open()
        resp = self._send("GET", self._conditions)
        complete = False
        try:
            if resp.status != 200:
                raise self._status_error(resp, "GET")
            self._check_validators(resp)
            self._check_length(resp, self.size)
            yield from self._body(resp, self.size)
            complete = True
        finally:
            self._finish(resp, complete)

    def close(self) -> None:
        """Close any response still open; the pool's idle connections stay for reuse."""
        self.closed = True
        for resp in list(self._open):
            self._finish(resp, False)

    def __enter__(self) -> HTTPSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- learning the size and validators --

    def _learn(self) -> int:
        resp = self._send("HEAD", {}, remember=True)
        try:
            if resp.status in (405, 501):
                return self._probe()  # no HEAD here: ask for the first byte instead
            if resp.status != 200:
                raise self._status_error(resp, "HEAD")
            self._take_validators(resp)
            length = resp.headers.get("Content-Length")
            if length is None or not length.isdigit():
                return self._probe()
            return int(length)
        finally:
            self._finish(resp, True)

    def _probe(self) -> int:
        """The size from ``Content-Range`` of a one-byte ranged GET."""
        resp = self._send("GET", {"Range": "bytes=0-0"}, remember=True)
        try:
            if resp.status != 206:
                raise UpstreamError(f"{self.url}: size unknown (no Content-Length on HEAD and "
                                    f"{resp.status} to a ranged GET)", status=resp.status)
            self._take_validators(resp)
            match = CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", ""))
            if match is None or match[3] == "*":
                raise UpstreamError(f"{self.url}: size unknown (Content-Range "
                                    f"{resp.headers.get('Content-Range')!r})",
                                    status=resp.status)
            return int(match[3])
        finally:
            self._finish(resp, False)

    def _take_validators(self, resp: urllib3.BaseHTTPResponse) -> None:
        self.etag = resp.headers.get("ETag")
        self.last_modified = resp.headers.get("Last-Modified")
        self.content_type = resp.headers.get("Content-Type")
        self.content_encoding = _encoding(resp)
        # RFC 9530 3: the digest of the selected representation, on a 206 too; insecure
        # algorithms (RFC 9530 5) are not passed on.
        self.repr_digest = secure_repr_digest(resp.headers.get("Repr-Digest"))

    def _preconditions(self) -> dict[str, str]:
        """Headers that make the upstream refuse (412) another version than the first."""
        if self.etag and not self.etag.startswith("W/"):
            return {"If-Match": self.etag, "If-Range": self.etag}
        if self.last_modified:
            return {"If-Unmodified-Since": self.last_modified}
        return {}

    # -- reading --

    def _ranged(self, start: int, stop: int) -> Iterator[bytes]:
        self._check_open()
        headers = {**self._conditions, "Range": f"bytes={start}-{stop - 1}"}
        resp = self._send("GET", headers)
        complete = False
        try:
            if resp.status == 206:
                self._check_validators(resp)
                check_content_range(self.url, resp.headers.get("Content-Range", ""), start,
                                    stop, self.size, field="206 with Content-Range",
                                    status=206)
                self._check_length(resp, stop - start)
                yield from self._body(resp, stop - start)
                complete = True
            elif resp.status == 200:
                # The upstream ignored Range: the same version's whole body. Skip up to
                # ``start`` in-stream if that is cheap enough, else give up before any byte.
                self._check_validators(resp)
                self._check_length(resp, self.size)
                if start > self.max_skip:
                    raise UpstreamError(f"{self.url}: upstream ignored Range; skipping {start} "
                                        f"bytes exceeds max_skip={self.max_skip}",
                                        status=200)
                for _ in self._body(resp, start, last=False):
                    pass
                yield from self._body(resp, stop - start, last=False)
            else:
                raise self._status_error(resp, f"GET bytes={start}-{stop - 1}")
        finally:
            self._finish(resp, complete)

    def _body(self, resp: urllib3.BaseHTTPResponse, count: int,
              last: bool = True) -> Iterator[bytes]:
        """Exactly ``count`` bytes of ``resp``, streamed; an early end raises. When they are
        the ``last`` of it, its end is checked before the final chunk goes out, so an upstream
        that sends more than it announced aborts the response while it is still short."""
        remaining = count
        while remaining:
            with translated(self.url, _as_oserror):
                data = resp.read(min(self.chunk_size, remaining), decode_content=False)
            if not data:
                raise ConnectionError(f"{self.url}: upstream ended {remaining} bytes short "
                                      f"of {count}")
            remaining -= len(data)
            if not remaining and last and resp.length_remaining != 0:
                with translated(self.url, _as_oserror):
                    extra = resp.read(1, decode_content=False)
                if extra:
                    raise UpstreamError(f"{self.url}: upstream sent more than it announced")
            yield data

    # -- checks --

    def _check_validators(self, resp: urllib3.BaseHTTPResponse) -> None:
        for name, ours in (("ETag", self.etag), ("Last-Modified", self.last_modified)):
            theirs = resp.headers.get(name)
            if ours and theirs and theirs != ours:
                raise SourceChanged(f"{self.url}: {name} is now {theirs}, was {ours}")

    def _check_length(self, resp: urllib3.BaseHTTPResponse, count: int) -> None:
        length = resp.headers.get("Content-Length")
        if _encoding(resp) != self.content_encoding:
            # Ranges count bytes of the representation as stored (a .gz served with
            # Content-Encoding: gzip, say); an encoding that changes between answers does not.
            raise UpstreamError(f"{self.url}: Content-Encoding {_encoding(resp)}, was "
                                f"{self.content_encoding}", status=resp.status)
        if length is not None and length.strip() != str(count):
            if resp.status == 200:
                raise SourceChanged(f"{self.url}: size is now {length}, was {self.size}")
            raise UpstreamError(f"{self.url}: Content-Length {length} for {count} bytes",
                                status=resp.status)

    def _status_error(self, resp: urllib3.BaseHTTPResponse, what: str) -> OSError:
        status = resp.status
        text = f"{self.url}: {what}: {status} {resp.reason or ''}".rstrip()
        if status in (404, 410):
            return FileNotFoundError(errno.ENOENT, text)
        if status in (401, 403):
            return PermissionError(errno.EACCES, text)
        if status in (412, 416):
            # 412: the precondition on the first version failed; 416: the range asked for,
            # inside the size learnt at the start, is no longer there.
            return SourceChanged(text)
        return UpstreamError(text, status=status)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{self.url}: read from a closed source")

    # -- connections --

    def _send(self, method: str, headers: Mapping[str, str],
              remember: bool = False) -> urllib3.BaseHTTPResponse:
        """The answer at the end of the redirects ``self.redirects`` lets this request follow;
        with ``remember``, later requests go straight to where it was."""
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._request(method, url, headers)
            location = resp.headers.get("Location")
            if resp.status not in _REDIRECT_STATUSES or not location:
                if remember:
                    self.url = url
                return resp
            remaining = resp.length_remaining
            self._finish(resp, remaining is not None and remaining <= _DRAIN_LIMIT)
            url = self._redirect_target(url, urljoin(url, location.strip()), resp.status)
        raise UpstreamError(f"{self.url}: too many redirects (more than {MAX_REDIRECTS})")

    def _redirect_target(self, current: str, target: str, status: int) -> str:
        """``target``, if ``self.redirects`` lets a request at ``current`` go there."""
        where = f"{current}: {status} redirect to {target}"
        if self.redirects == "none":
            raise UpstreamError(f"{where} not followed (redirects='none')", status=status)
        if urlsplit(target).scheme.lower() not in _DEFAULT_PORTS:
            raise UpstreamError(f"{where}: not an http or https URL", status=status)
        if self.redirects == "same-origin" and _origin(target) != self._origin:
            raise UpstreamError(f"{where}: another origin (scheme, host or port) than the URL "
                                f"given, refused (redirects='any' follows it, without the "
                                f"headers given)", status=status)
        return target

    def _request(self, method: str, url: str,
                 headers: Mapping[str, str]) -> urllib3.BaseHTTPResponse:
        """One request to ``url``, redirects not followed; the caller's headers only if
        ``url`` is on the origin of ``self.url`` as given (they may hold credentials)."""
        given = self._headers if _origin(url) == self._origin else {}
        with translated(url, _as_oserror):
            resp = self.pool.request(method, url,
                                     headers={**given, "Accept-Encoding": "identity", **headers},
                                     preload_content=False, decode_content=False,
                                     redirect=False, retries=False, timeout=self.timeout)
        self._open.add(resp)
        return resp

    def _finish(self, resp: urllib3.BaseHTTPResponse, complete: bool) -> None:
        """Back to the pool after a clean, complete read; else close the connection."""
        self._open.discard(resp)
        if complete:
            resp.drain_conn()  # nothing is left; this closes the reader the socket keeps
        else:
            resp.close()
        resp.release_conn()
