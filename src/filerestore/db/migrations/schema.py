"""Column and index shapes the migrations share. A migration's schema must never change once
released: these helpers only spell the same DDL shorter, and a test compares the migrated
schema with the models on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op


def reference(
    name: str,
    type_: sa.types.TypeEngine[Any],
    target: str,
    *,
    ondelete: str = "CASCADE",
    nullable: bool = False,
    **options: Any,
) -> sa.Column[Any]:
    """A column referring to ``target`` (``table.column``), removed or cleared with it."""
    key = sa.ForeignKey(target, ondelete=ondelete)
    if options.get("primary_key"):
        return sa.Column(name, type_, key, **options)
    return sa.Column(name, type_, key, nullable=nullable, **options)


def partial_index(
    name: str, table: str, columns: Sequence[str], where: str, *, unique: bool = False
) -> None:
    """An index over the rows ``where`` holds, on SQLite and PostgreSQL alike."""
    op.create_index(
        name,
        table,
        list(columns),
        unique=unique,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
