"""API tokens: create (the secret is shown once), list, revoke, and check a presented one.

A token reads ``fr_<id>_<secret>``. The table keeps SHA-256 of the whole token; checking
looks the row up by id and compares the hashes with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from filerestore.db.engine import Database
from filerestore.db.models_auth import ApiToken
from filerestore.errors import (
    AuthenticationError,
    InvalidParameterError,
    TokenExistsError,
    TokenNotFoundError,
)

_FORMAT = re.compile(r"^fr_([0-9]{1,12})_([A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.admin, row.created_at, row.revoked_at)


def create_token(db: Database, name: str, admin: bool = False) -> tuple[TokenInfo, str]:
    """A new token; returns its description and the token itself (not stored anywhere)."""
    if not name or len(name) > 200:
        raise InvalidParameterError("a token name must be 1 to 200 characters")
    try:
        with db.write() as s:
            if s.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
                raise TokenExistsError(f"a token named {name!r} already exists")
            row = ApiToken(name=name, token_hash="", admin=admin, created_at=datetime.now(UTC))
            s.add(row)
            s.flush()
            token = f"fr_{row.id}_{secrets.token_urlsafe(32)}"
            row.token_hash = _hash(token)
            info = _info(row)
    except IntegrityError as exc:
        raise TokenExistsError(f"a token named {name!r} already exists") from exc
    return info, token


def list_tokens(db: Database) -> list[TokenInfo]:
    with db.read() as s:
        return [_info(r) for r in s.scalars(select(ApiToken).order_by(ApiToken.id))]


def revoke_token(db: Database, name: str) -> TokenInfo:
    with db.write() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == name))
        if row is None:
            raise TokenNotFoundError(f"no token named {name!r}")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        return _info(row)


def check_token(db: Database, token: str) -> TokenInfo:
    """The token's description, or AuthenticationError (malformed, unknown or revoked)."""
    match = _FORMAT.match(token)
    if not match:
        raise AuthenticationError("malformed bearer token")
    with db.read() as s:
        row = s.get(ApiToken, int(match.group(1)))
        # compare even when the row is missing, so timing does not tell ids apart
        stored = row.token_hash if row is not None else "0" * 64
        valid = hmac.compare_digest(stored, _hash(token))
        if row is None or not valid:
            raise AuthenticationError("unknown bearer token")
        if row.revoked_at is not None:
            raise AuthenticationError("the bearer token was revoked")
        return _info(row)
