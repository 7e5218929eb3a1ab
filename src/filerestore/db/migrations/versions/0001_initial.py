"""Initial schema: repositories, backups, restore_mounts, download_holds, audit_events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filerestore.db.migrations.schema import reference
from filerestore.db.models import UTCDateTime

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("root_path", sa.Text(), nullable=False),
        sa.Column("mount_source", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "backups",
        sa.Column("id", sa.Integer(), primary_key=True),
        reference("repository_id", sa.Integer(), "repositories.id"),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("vm_name", sa.String(255), nullable=True),
        sa.Column("disk_name", sa.String(255), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        reference(
            "parent_backup_id", sa.Integer(), "backups.id", ondelete="SET NULL", nullable=True
        ),
        sa.Column("virtual_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("repository_id", "path", name="uq_backups_repository_path"),
    )
    op.create_index("ix_backups_repository_id", "backups", ["repository_id"])
    op.create_table(
        "restore_mounts",
        sa.Column("id", sa.String(36), primary_key=True),
        reference("backup_id", sa.Integer(), "backups.id"),
        sa.Column("volume", sa.String(255), nullable=True),
        sa.Column("volume_auto", sa.Boolean(), nullable=False),
        sa.Column("mount_path", sa.Text(), nullable=True),
        sa.Column("nbd_device", sa.String(64), nullable=True),
        sa.Column("filesystem_type", sa.String(32), nullable=True),
        sa.Column("mount_mode", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_accessed_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("status_changed_at", UTCDateTime(), nullable=False),
        sa.Column("holder_host", sa.String(255), nullable=True),
        sa.Column("holder_pid", sa.Integer(), nullable=True),
        sa.Column("holder_start", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_restore_mounts_status", "restore_mounts", ["status"])
    op.create_index("ix_restore_mounts_backup_volume", "restore_mounts", ["backup_id", "volume"])
    op.create_table(
        "download_holds",
        sa.Column("id", sa.Integer(), primary_key=True),
        reference("mount_id", sa.String(36), "restore_mounts.id"),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_start", sa.BigInteger(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_download_holds_mount_id", "download_holds", ["mount_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("backup_id", sa.Integer(), nullable=True),
        sa.Column("mount_id", sa.String(36), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_index("ix_audit_events_action", "audit_events", ["action"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("download_holds")
    op.drop_table("restore_mounts")
    op.drop_table("backups")
    op.drop_table("repositories")
