"""Opaque listing cursors: where the next page starts, and which listing they belong to.

A cursor is URL-safe base64 of a small JSON object. It carries no names in clear: the
listing it belongs to (a digest of the directory path and the order parameters), the
directory's identity (a digest of its inode and times, so a changed or different directory
is detected), how many entries were already returned, and a digest of the last one (so a
cursor applied to a listing whose order differs is refused rather than skipping or repeating
entries). Tampering can at worst move the position inside the same listing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from filerestore.errors import InvalidCursorError, StaleCursorError

VERSION = 1
MAX_TOKEN_LENGTH = 512  # a real cursor is about 120 characters


def digest(*parts: object) -> str:
    """A short, stable digest of ``parts`` (their repr; names with surrogates included)."""
    blob = repr(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Cursor:
    listing: str  # digest of path and order parameters
    identity: str  # digest of the directory's inode and times
    index: int  # entries already returned
    last: str  # digest of the last entry returned

    def encode(self) -> str:
        import json  # with the first page that has a next one, not with every listing

        blob = json.dumps(
            {"v": VERSION, "l": self.listing, "d": self.identity, "i": self.index, "n": self.last},
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")

    def check(self, listing: str, identity: str) -> None:
        """Refuse the cursor if it was issued for another listing or directory."""
        if listing != self.listing:
            raise InvalidCursorError(
                "the cursor was issued for another directory or sort order; "
                "pass the same path and order as the request that returned it"
            )
        if identity != self.identity:
            raise StaleCursorError(
                "the directory is not the one the cursor was issued for; list it again "
                "without a cursor"
            )


def decode(token: str) -> Cursor:
    """Parse a cursor token; a malformed one raises InvalidCursorError."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidCursorError("malformed cursor: empty or too long")
    import json

    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(blob)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursorError("malformed cursor: not one this service issued") from exc
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise InvalidCursorError("malformed cursor: unknown version")
    listing, identity, index, last = (data.get(k) for k in ("l", "d", "i", "n"))
    if not (
        isinstance(listing, str)
        and isinstance(identity, str)
        and isinstance(last, str)
        and isinstance(index, int)
        and not isinstance(index, bool)
        and index > 0
    ):
        raise InvalidCursorError("malformed cursor: fields missing or of the wrong type")
    return Cursor(listing, identity, index, last)
