"""The digest fields of RFC 9530: ``Repr-Digest`` and ``Want-Repr-Digest``.

Both are Structured Field Dictionaries (RFC 8941 3.2). ``Repr-Digest`` maps an algorithm to
the digest of the selected representation as a Byte Sequence (RFC 9530 3); ``Want-Repr-Digest``
maps an algorithm to a preference, an Integer from 0 ("not acceptable") to 10 (RFC 9530 4).

Decisions where the RFCs leave room:

- A field that does not parse as a Dictionary is ignored as a whole (RFC 8941 4.2: "fail
  parsing"); a member of the wrong type (a preference that is no Integer from 0 to 10, a digest
  that is no Byte Sequence of the algorithm's length) is skipped and the rest kept.
- Only ``sha-256`` and ``sha-512`` are ever sent. The other algorithms of the registry (RFC 9530
  5 and 18.5: ``md5``, ``sha``, ``unixsum``, ``unixcksum``, ``adler``, ``crc32c``) are marked
  insecure or deprecated there and are dropped from any digest passed on.
- ``Want-Repr-Digest`` is a hint (RFC 9530 4: a recipient "MAY ignore it"): what is sent does not
  depend on it, so the answer stays the same for every request and a shared cache needs no
  ``Vary``. A client that gives ``sha-256`` preference 0 and asks only for algorithms that cannot
  be had gets ``sha-256`` anyway (RFC 9530 3: a sender "MAY send a digest without knowing whether
  the recipient supports a given hashing algorithm").

Nothing here raises on hostile input, and parsing is linear in the length of the input.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping

__all__ = ["INSECURE_ALGORITHMS", "SECURE_ALGORITHMS", "format_repr_digest",
           "parse_dictionary", "parse_repr_digest", "parse_want_repr_digest",
           "s3_repr_digest", "secure_repr_digest"]

# RFC 9530 18.5 (Hash Algorithms for HTTP Digest Fields registry): status "Active" and the
# digest length in bytes.
SECURE_ALGORITHMS: Mapping[str, int] = {"sha-256": 32, "sha-512": 64}
# Same registry, status "Deprecated": "insecure" or "not a cryptographic hash".
INSECURE_ALGORITHMS = frozenset({"md5", "sha", "unixsum", "unixcksum", "adler", "crc32c"})

_MAX_PREFERENCE = 10  # RFC 9530 4: "an Integer ... in the range 0 to 10 inclusive"

# RFC 8941 3.1.2: key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
# 3.3.1 and 3.3.2: integer (at most 15 digits) or decimal (at most 12 + 3 digits).
_NUMBER = re.compile(r"-?(?:[0-9]{1,12}\.[0-9]{1,3}|[0-9]{1,15})(?![0-9.])")
# 3.3.4: token = ( ALPHA / "*" ) *( tchar / ":" / "/" )
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
# 3.3.5: byte sequence = ":" *(base64) ":"
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
# 3.3.3: string chars are %x20-21 / %x23-5B / %x5D-7E, or an escaped DQUOTE or backslash.
_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_OWS = " \t"


class Token(str):
    """An RFC 8941 Token (3.3.4), told apart from a String."""

    __slots__ = ()


class _Malformed(ValueError):
    """The field is not a Dictionary: ignore it whole (RFC 8941 4.2)."""


class _Reader:
    """A position in a field value, for the parsing algorithms of RFC 8941 4.2."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def match(self, pattern: re.Pattern[str]) -> re.Match[str]:
        found = pattern.match(self.text, self.pos)
        if found is None:
            raise _Malformed(f"unexpected {self.peek()!r} at {self.pos}")
        self.pos = found.end()
        return found


def _bare_item(reader: _Reader) -> object:
    """RFC 8941 4.2.3.1: Integer, Decimal, String, Token, Byte Sequence or Boolean."""
    first = reader.peek()
    if first and first in "-0123456789":
        number = reader.match(_NUMBER).group()
        return float(number) if "." in number else int(number)
    if first == '"':
        return re.sub(r"\\(.)", r"\1", reader.match(_STRING).group(1))
    if first == ":":
        return _base64(reader.match(_BYTES).group(1))
    if first == "?":
        value = reader.text[reader.pos + 1:reader.pos + 2]
        if value not in ("0", "1"):
            raise _Malformed("a Boolean is ?0 or ?1")
        reader.pos += 2
        return value == "1"
    return Token(reader.match(_TOKEN).group())


def _base64(text: str) -> bytes:
    """A Byte Sequence's content; padding may be left out (RFC 8941 4.2.7: parsers "SHOULD"
    accept that), anything else that is not base64 fails."""
    stripped = text.rstrip("=")
    if "=" in stripped or len(text) - len(stripped) > 2:
        raise _Malformed("misplaced base64 padding")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _Malformed("not base64") from None


def _parameters(reader: _Reader) -> None:
    """RFC 8941 4.2.3.2, read and dropped: no digest field defines a parameter."""
    while reader.peek() == ";":
        reader.pos += 1
        reader.skip(" ")
        reader.match(_KEY)
        if reader.peek() == "=":
            reader.pos += 1
            _bare_item(reader)


def _member_value(reader: _Reader) -> object:
    """RFC 8941 4.2.1.1: an Item or an Inner List, its parameters dropped."""
    if reader.peek() != "(":
        value = _bare_item(reader)
        _parameters(reader)
        return value
    reader.pos += 1
    items: list[object] = []
    while True:
        reader.skip(" ")
        if reader.peek() == ")":
            reader.pos += 1
            _parameters(reader)
            return items
        items.append(_bare_item(reader))
        _parameters(reader)
        if reader.peek() not in (" ", ")"):
            raise _Malformed("inner list items are separated by spaces")


def parse_dictionary(value: str) -> dict[str, object] | None:
    """An RFC 8941 Dictionary (4.2.2) as key -> value (a member without a value is True;
    parameters are dropped; a repeated key keeps its last value), or None if malformed."""
    reader = _Reader(value.strip(" "))  # 4.2: leading and trailing SP are discarded
    members: dict[str, object] = {}
    try:
        while reader.peek():
            key = reader.match(_KEY).group()
            if reader.peek() == "=":
                reader.pos += 1
                members[key] = _member_value(reader)
            else:
                members[key] = True
                _parameters(reader)
            reader.skip(_OWS)
            if not reader.peek():
                break
            if reader.peek() != ",":
                raise _Malformed("members are separated by commas")
            reader.pos += 1
            reader.skip(_OWS)
            if not reader.peek():
                raise _Malformed("a trailing comma")
    except _Malformed:
        return None
    return members


def parse_want_repr_digest(value: str | None) -> dict[str, int]:
    """``Want-Repr-Digest`` (RFC 9530 4) as algorithm -> preference (0 means "not
    acceptable"); empty when absent or malformed. Members that are no Integer from 0 to 10
    are skipped."""
    members = parse_dictionary(value) if value is not None else None
    if members is None:
        return {}
    return {key: pref for key, pref in members.items()
            if type(pref) is int and 0 <= pref <= _MAX_PREFERENCE}


def parse_repr_digest(value: str | None) -> dict[str, bytes]:
    """``Repr-Digest`` (RFC 9530 3) as algorithm -> digest bytes; empty when absent or
    malformed. Members whose value is no Byte Sequence are skipped."""
    members = parse_dictionary(value) if value is not None else None
    if members is None:
        return {}
    return {key: digest for key, digest in members.items() if isinstance(digest, bytes)}


def format_repr_digest(digests: Iterable[tuple[str, bytes]]) -> str:
    """A ``Repr-Digest`` value: ``sha-256=:<base64>:`` members (RFC 8941 4.1.8) joined by
    ", " (4.1.2)."""
    return ", ".join(f"{name}=:{base64.b64encode(digest).decode('ascii')}:"
                     for name, digest in digests)


def secure_repr_digest(value: str | None) -> str | None:
    """The members of a ``Repr-Digest`` received from elsewhere (an app, an upstream, an
    object store) that may be passed on: only secure algorithms, with a digest of their
    length (RFC 9530 5); None when none is left."""
    kept = [(name, digest) for name, digest in parse_repr_digest(value).items()
            if SECURE_ALGORITHMS.get(name) == len(digest)]
    return format_repr_digest(kept) if kept else None


def s3_repr_digest(checksum: object, checksum_type: object = None) -> str | None:
    """A ``Repr-Digest`` from an S3 object's ``ChecksumSHA256`` (base64), when it is the
    SHA-256 of the whole object: ``ChecksumType`` ``FULL_OBJECT``, or no ``ChecksumType``
    (S3 before it had one, and emulators) and no ``-<parts>`` suffix. A ``COMPOSITE``
    checksum of a multipart upload is a digest of the parts' digests, not of the bytes."""
    if not isinstance(checksum, str) or checksum_type not in (None, "FULL_OBJECT"):
        return None
    try:
        digest = base64.b64decode(checksum, validate=True)
    except (binascii.Error, ValueError):
        return None  # "<base64>-<parts>": composite
    if len(digest) != SECURE_ALGORITHMS["sha-256"]:
        return None
    return format_repr_digest([("sha-256", digest)])
