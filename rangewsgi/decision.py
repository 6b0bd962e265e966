"""From the inner response to a ``Plan``: the part both adapters (WSGI, ASGI) share.

The adapter finds the file behind the body, if there is one; this module measures it, adds
validators to a plain file that has none, applies the predicate and calls the pure
``plan.decide`` (RFC 9110 13.2.2: preconditions, then If-Range and Range).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from .conditions import file_validators, is_strong
from .digests import ContentValidators, cached_content_validators, content_validators
from .files import FoundFile, measure
from .options import Options
from .plan import (
    LENGTH_UNKNOWN,
    Headers,
    Kind,
    Plan,
    Request,
    ResponseFacts,
    decide,
    read_headers,
)
from .sources import RangedSource

__all__ = [
    "NOT_GIVEN",
    "UNSTABLE_CODING",
    "Decision",
    "LengthWarnings",
    "cached_content_for",
    "clip",
    "content_for",
    "decide_response",
    "needs_body",
    "ranged_media_type",
    "wants_content",
]

logger = logging.getLogger("rangewsgi")

# The reason of a coded 200 that passes through because its bytes may change per request.
UNSTABLE_CODING = ("content coded without a strong ETag and not read from a file: its bytes "
                   "may differ on every request")

_LOG_PREFIX = 64  # characters of a request field that a log line carries at most


@dataclass(slots=True)
class Decision:
    """The plan, and the file the body comes from when it is read by seeking."""

    plan: Plan
    found: FoundFile | None = None
    eof: int | None = None  # the found file's measured end, an absolute position
    source: RangedSource | None = None
    # The found file is a plain file on disk (``files.measure``: its descriptor holds the
    # bytes it yields): the only kind of file whose window may go to a server's sendfile.
    on_disk: bool = False


class _Unscanned:
    """The type of ``UNSCANNED``."""


UNSCANNED = _Unscanned()  # the headers have not been through ``read_headers`` yet


class NotGiven:
    """The type of ``NOT_GIVEN``."""


NOT_GIVEN = NotGiven()  # content validators not computed by the adapter: read if needed


def needs_body(request: Request, status: str, headers: Headers, options: Options,
               facts: ResponseFacts | _Unscanned | None = UNSCANNED) -> bool:
    """Whether the decision waits for the body (a file to find, measure or validate);
    ``facts``, when the caller has scanned the headers already, is what ``read_headers``
    gave."""
    if isinstance(facts, _Unscanned):
        facts = read_headers(status, headers)
    if facts is None:
        return False
    if request.range is not None or request.has_preconditions:
        return True
    if facts.length is None or (facts.coded and not is_strong(facts.etag)):
        # No length, or coded content whose stability only a file body can show.
        return True
    return options.file_validators and facts.etag is None and facts.last_modified is None


def decide_response(request: Request, status: str, headers: Headers,
                    found: FoundFile | None, options: Options, context: Any,
                    source: RangedSource | None = None,
                    facts: ResponseFacts | _Unscanned | None = UNSCANNED,
                    content: ContentValidators | NotGiven | None = NOT_GIVEN) -> Decision:
    """The answer to ``request`` for the inner ``status`` and ``headers``; ``found`` is the
    file behind the body, or ``source`` the ranged source that is the body, if any;
    ``context`` (environ or scope) goes to the predicate; ``facts`` as for ``needs_body``;
    ``content``: the file's content validators when the adapter has computed them (None:
    the file has none), else the decision reads the file itself if it needs them."""
    if isinstance(facts, _Unscanned):
        facts = read_headers(status, headers)
    if facts is None:
        return Decision(Plan(Kind.PASS, status, headers, reason="not a rangeable 200"))
    given = headers  # what the app sent: a declined predicate leaves exactly that
    length = facts.length
    eof = None
    on_disk = False
    if source is not None:
        if length is not None and length != source.size:
            return Decision(Plan(Kind.PASS, status, headers,
                                 reason="source size differs from Content-Length"))
        length = source.size
        etag, modified = getattr(source, "etag", None), getattr(source, "last_modified", None)
        if facts.etag is None and facts.last_modified is None and (etag or modified):
            headers, facts = _with_validators(headers, facts, etag, modified)
        headers = _with_source_digest(headers, getattr(source, "repr_digest", None))
    elif found is not None:
        measured = measure(found)
        available = measured.remaining
        on_disk = measured.on_disk
        if available is not None:
            eof = found.base + available
        if length is None:
            length = available
        elif available is not None and available < length:
            return Decision(Plan(Kind.PASS, status, headers,
                                 reason="file shorter than Content-Length"))
        if (options.file_validators and measured.mtime_ns is not None
                and available is not None and facts.etag is None
                and facts.last_modified is None):
            if options.file_validators == "content":
                headers, facts = _content_validated(
                    headers, facts, _content_of(found, length, available, content), available,
                    measured.mtime_ns)
            else:
                headers, facts = _validated(headers, facts, found.base + available,
                                            measured.mtime_ns)
    unranged = LENGTH_UNKNOWN
    if facts.coded and source is None and not on_disk and not is_strong(facts.etag):
        # Compressed by the app as it answers (Django's or Starlette's GZipMiddleware):
        # different bytes on every request (a time stamp, a file name field), and at best a
        # weak ETag. RFC 9110 8.8.1 and 13.1.5: a weak validator is not good enough for
        # partial content; parts of two such answers do not make one (nginx too does not
        # range what it compresses on the fly). Preconditions still hold (304, 412).
        length, unranged = None, UNSTABLE_CODING
    if length is not None:
        predicate = options.predicate
        if predicate is not None and not predicate(context, given, length):
            return Decision(Plan(Kind.PASS, status, given, reason="predicate declined"))
    decided = decide(request, status, headers, facts, length, options.limits,
                     options.conditional, unranged)
    return Decision(decided, found, eof, source, on_disk)


def _validated(headers: Headers, facts: ResponseFacts, size: int,
               mtime_ns: int) -> tuple[Headers, ResponseFacts]:
    """``headers`` and ``facts`` with a strong ETag and a Last-Modified for a plain file
    (RFC 9110 8.8.3 and 8.8.2), the same on every machine that has the same file."""
    etag, last_modified = file_validators(size, mtime_ns)
    return _with_validators(headers, facts, etag, last_modified)


def wants_content(options: Options, facts: ResponseFacts | None) -> bool:
    """Whether a decision would give a file body validators from its content: the option
    says ``"content"`` and the app gave no validator of its own."""
    return (options.file_validators == "content" and facts is not None
            and facts.etag is None and facts.last_modified is None)


def cached_content_for(found: FoundFile) -> ContentValidators | None:
    """``content_for`` when the validators are in memory, else None; never reads the file."""
    return cached_content_validators(found.file) if found.base == 0 else None


def content_for(found: FoundFile) -> ContentValidators | None:
    """The content validators of the file behind a body when the representation is the whole
    file (read from its start); blocking: the whole file is read once per version."""
    return content_validators(found.file) if found.base == 0 else None


def _content_of(found: FoundFile, length: int | None, available: int,
                given: ContentValidators | NotGiven | None) -> ContentValidators | None:
    """The file's content validators, if they describe the representation: the file from
    its first byte to its last (a Content-Length shorter than the file is another one)."""
    if length is not None and length != available:
        return None
    return content_for(found) if isinstance(given, NotGiven) else given


def _content_validated(headers: Headers, facts: ResponseFacts,
                       content: ContentValidators | None, size: int,
                       mtime_ns: int) -> tuple[Headers, ResponseFacts]:
    """``headers`` and ``facts`` with validators from the file's bytes: a strong ETag
    (RFC 9110 8.8.3), Repr-Digest (RFC 9530 3) and a Last-Modified as ``True`` gives. None
    (the file changed while it was read, or only part of it is the representation): no
    validators at all, rather than ones the other replicas would not give."""
    if content is None:
        return headers, facts
    _, last_modified = file_validators(size, mtime_ns)
    headers, facts = _with_validators(headers, facts, content.etag, last_modified)
    if not any(name.lower() == "repr-digest" for name, _ in headers):
        headers.append(("Repr-Digest", content.repr_digest))
    return headers, facts


def _with_source_digest(headers: Headers, digest: object) -> Headers:
    """``headers`` with a ranged source's ``Repr-Digest`` (RFC 9530 3: the digest of the
    whole representation, on the 200 and on every 206) unless the app gave its own."""
    if not isinstance(digest, str) or not digest:
        return headers
    if any(name.lower() == "repr-digest" for name, _ in headers):
        return headers
    return [*headers, ("Repr-Digest", digest)]


def _with_validators(headers: Headers, facts: ResponseFacts, etag: str | None,
                     last_modified: str | None) -> tuple[Headers, ResponseFacts]:
    added = list(headers)
    if etag:
        facts.etag = etag
        added.append(("ETag", etag))
    if last_modified:
        facts.last_modified = last_modified
        added.append(("Last-Modified", last_modified))
    return added, facts


def clip(value: object) -> str:
    """A request-controlled value for a log line: a short prefix, never the whole value."""
    text = "-" if value is None else str(value)
    if len(text) <= _LOG_PREFIX:
        return text
    return f"{text[:_LOG_PREFIX]}...({len(text)} chars)"


# Media that clients fetch in ranges: players seek (audio, video), downloads resume
# (octet-stream, archives, disk images), PDF viewers fetch the pages they show. Images are
# left out: browsers do not range them, and generated images (thumbnails) are common.
_RANGED_MEDIA_PREFIXES = ("audio/", "video/")
_RANGED_MEDIA_TYPES = frozenset({
    "application/octet-stream", "application/pdf", "application/zip", "application/gzip",
    "application/x-gzip", "application/x-tar", "application/x-bzip2", "application/x-xz",
    "application/zstd", "application/x-7z-compressed", "application/vnd.rar",
    "application/x-rar-compressed", "application/x-iso9660-image",
    "application/x-apple-diskimage", "application/java-archive",
    "application/vnd.android.package-archive",
})


def ranged_media_type(headers: Headers) -> str | None:
    """The ``Content-Type`` of ``headers`` when it names media that clients fetch in ranges
    and the content is not coded on the fly (a ``Content-Encoding`` other than ``identity``
    has no length to give before it is made); else None."""
    media = None
    for name, value in headers:
        key = name.lower()
        if key == "content-encoding" and value.strip(" \t").lower() not in ("", "identity"):
            return None
        if key == "content-type":
            media = value
    if media is None:
        return None
    essence = media.split(";", 1)[0].strip(" \t").lower()  # RFC 9110 8.3.1: case-insensitive
    if essence.startswith(_RANGED_MEDIA_PREFIXES) or essence in _RANGED_MEDIA_TYPES:
        return media
    return None


class LengthWarnings:
    """One ``WARNING`` per route when a ``200`` of a ranged media type passes through for
    want of a length (no ``Content-Length``, and no file body whose size can be measured).

    ``fix`` says, in the adapter's terms, how to give the middleware a length. Routes are
    remembered by hash, at most ``limit`` of them: memory stays bounded whatever paths
    clients make up, and once ``limit`` routes are reported no further one is.
    """

    __slots__ = ("_lock", "_seen", "fix", "limit")

    def __init__(self, fix: str, limit: int = 256) -> None:
        self.fix = fix
        self.limit = limit
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def check(self, decided: Plan, route: tuple[str, str]) -> None:
        """Warn about ``decided`` for ``route`` (prefix, path) if it is the first such."""
        if decided.reason != LENGTH_UNKNOWN:
            return
        media = ranged_media_type(decided.headers)
        if media is None:
            return
        key = hash(route)
        with self._lock:
            if key in self._seen or len(self._seen) >= self.limit:
                return
            self._seen.add(key)
            last = len(self._seen) == self.limit
        logger.warning(
            "route %r: a 200 of %s passes through without ranges: its length is unknown "
            "(no Content-Length, and no file body whose size the middleware can measure). "
            "To have it ranged, %s. Logged once per route.%s",
            clip("".join(route)), clip(media), self.fix,
            f" This is the last route reported ({self.limit} so far)." if last else "")
