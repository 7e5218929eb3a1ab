"""The api_tokens table: REST API bearer tokens, stored as hashes only.

A token is shown once, when created (``fr_<id>_<secret>``); the table keeps the SHA-256 of
the whole token. Lookup is by id, and the hashes are compared in constant time, so neither
the database query nor the comparison depends on how much of a guessed secret is right.
Created by migration 0002; imported by the API only (the catalog does not need it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from filerestore.db.models import Base, UTCDateTime, utcnow


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
