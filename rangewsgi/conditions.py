"""The ``If-Range`` precondition (RFC 9110 13.1.5), evaluated against response validators."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from werkzeug.http import parse_date

__all__ = ["if_range_holds"]

# RFC 9110 8.8.3: entity-tag = [ weak ] opaque-tag; opaque-tag = DQUOTE *etagc DQUOTE;
# etagc = %x21 / %x23-7E / obs-text.
_STRONG_ETAG = re.compile(r'"[\x21\x23-\x7e\x80-\xff]*"')
_OWS = " \t"


def _strong_etag(value: str | None) -> str | None:
    """The value if it is a syntactically valid strong entity-tag, else None."""
    if value is None:
        return None
    value = value.strip(_OWS)
    return value if _STRONG_ETAG.fullmatch(value) else None


def _http_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_date(value.strip(_OWS))
    except (ValueError, OverflowError, TypeError):
        return None


def if_range_holds(if_range: str, etag: str | None, last_modified: str | None,
                   date: str | None, now: datetime | None = None) -> bool:
    """True when the Range header may be honoured (RFC 9110 13.1.5).

    ``etag``, ``last_modified`` and ``date`` are the response's own header values.
    """
    value = if_range.strip(_OWS)
    # 13.1.5: "A valid entity-tag can be distinguished from a valid HTTP-date by examining the
    # first three characters for a DQUOTE."
    if '"' in value[:3]:
        # 13.1.5: true only if it "exactly matches ... using the strong comparison function"
        # (8.8.3.2: "both are not weak and their opaque-tags match character-by-character"),
        # so a weak tag on either side never matches.
        candidate = _strong_etag(value)
        return candidate is not None and candidate == _strong_etag(etag)
    requested = _http_date(value)
    modified = _http_date(last_modified)
    if requested is None or modified is None or requested != modified:
        return False  # 13.1.5: "comparison is by exact match"
    # 13.1.5: false if the Last-Modified "is not a strong validator"; 8.8.2.2: it is strong
    # when the Date is "at least one second after the Last-Modified value".
    sent = _http_date(date) or now or datetime.now(timezone.utc)
    return (sent - modified).total_seconds() >= 1
