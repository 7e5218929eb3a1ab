"""PostgreSQL: the name trigram index (GIN) with a pending list of 64 kB.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Migration 0005 turned the pending list off: with the default limit of 4 MB the index grew
to 3.5 times the size of a rebuilt one. The growth was the list's own pages: a list that
large is merged into the index in one piece, and its pages wait for a ``VACUUM`` to be
used again. Without the list, each new name is put in the index by itself, 18 or so
trigrams one at a time: 30-35 us a name, most of a full pass on PostgreSQL (5.3 of 7.5 s
for 100,000 files, cProfile).

A list of 64 kB (the least PostgreSQL takes) is merged by the inserting transaction every
few hundred names, in key order, and its few pages are used again at once. Measured on
PostgreSQL 15 (100,000 names of the bench's shape inserted as one statement, then 100
statements of 1,000 new names): 2.4 s and 1.4 s without the list, 8.8 s and 4.0 s with it off;
the index 9.5 MB against 9.6 MB; a substring search 2.4 against 2.0 ms. A search reads at
most those 64 kB of unmerged names. SQLite is unchanged (its FTS5 table is not affected).
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"

_INDEX = "ix_index_names_trgm"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER INDEX {_INDEX} SET (fastupdate = on, gin_pending_list_limit = 64)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER INDEX {_INDEX} SET (fastupdate = off)")
        op.execute(f"ALTER INDEX {_INDEX} RESET (gin_pending_list_limit)")
