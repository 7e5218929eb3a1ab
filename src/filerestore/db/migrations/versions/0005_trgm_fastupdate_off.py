"""PostgreSQL: the name trigram index (GIN) without its pending list (``fastupdate = off``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

With the pending list, names are inserted into the GIN index in batches as the list fills,
and the index grew to 3.5 times the size of a rebuilt one: over a chain of 100 backups x
20,000 files it held 143 bytes per stored version (a ``VACUUM FULL`` made it 35). Written
name by name instead it held 41 bytes per version, the index tables 469 instead of 570, and
the full pass was not slower (the names are written once, when first seen). A search no longer
reads an unsorted pending list either. SQLite is unchanged (its FTS5 table is not affected).
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"

_INDEX = "ix_index_names_trgm"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER INDEX {_INDEX} SET (fastupdate = off)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER INDEX {_INDEX} RESET (fastupdate)")
