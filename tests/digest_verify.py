"""A small verifier of downloads against ``Repr-Digest`` (RFC 9530 3), written apart from the
library's own parser so that the two check each other.

``matches(path, field_value)`` is True when the file's digest equals a member of the field
for an algorithm it knows (sha-256, sha-512), False when a known member differs; a field
without any known member raises ``ValueError`` (nothing to verify is not a success).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

__all__ = ["digest_members", "matches"]

_ALGORITHMS = {"sha-256": "sha256", "sha-512": "sha512"}
# One dictionary member: key "=" byte sequence, parameters allowed (RFC 8941 3.2, 3.3.5).
_MEMBER = re.compile(r"\s*([a-z*][a-z0-9_\-.*]*)=:([A-Za-z0-9+/]*={0,2}):(;[^,]*)?\s*\Z")


def digest_members(field_value: str) -> dict[str, bytes]:
    """Algorithm -> digest for each ``key=:base64:`` member; other members are skipped."""
    members: dict[str, bytes] = {}
    for piece in field_value.split(","):
        found = _MEMBER.match(piece)
        if found is not None:
            members[found.group(1)] = base64.b64decode(found.group(2), validate=True)
    return members


def file_digest(path: Path, algorithm: str) -> bytes:
    """The digest of the file's bytes with the named RFC 9530 algorithm."""
    digest = hashlib.new(_ALGORITHMS[algorithm])
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def matches(path: Path, field_value: str) -> bool:
    """True when every known algorithm's digest in ``field_value`` is the file's."""
    known = {name: value for name, value in digest_members(field_value).items()
             if name in _ALGORITHMS}
    if not known:
        raise ValueError(f"no sha-256 or sha-512 member in {field_value!r}")
    return all(file_digest(path, name) == value for name, value in known.items())
