"""S3 repositories: where the bucket is and how to reach it (never its credentials).

Revision ID: 0003_s3
Revises: 0002
Create Date: 2026-11-30

Other branches number their migrations too: whichever merges second sets its
``down_revision`` to the other's revision, so the chain stays one line.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_s3"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("repositories") as batch:  # SQLite rebuilds the table
        batch.add_column(sa.Column("endpoint", sa.Text(), nullable=True))
        batch.add_column(sa.Column("region", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("path_style", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("verify_tls", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("repositories") as batch:
        for column in ("verify_tls", "path_style", "region", "endpoint"):
            batch.drop_column(column)
