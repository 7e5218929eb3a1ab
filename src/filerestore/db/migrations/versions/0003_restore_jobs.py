"""Restore jobs and their manifests; a session's FUSE view (the process serving it).

Revision ID: 0003
Revises: 0003_s3 (main's S3 repositories migration, merged before this one)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filerestore.db.migrations.schema import reference
from filerestore.db.models import UTCDateTime

revision = "0003"
down_revision = "0003_s3"


def upgrade() -> None:
    op.create_table(
        "restore_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("mount_id", sa.String(36), nullable=False),
        sa.Column("backup_id", sa.Integer(), nullable=False),
        sa.Column("paths", sa.Text(), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("unkept", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker_host", sa.String(255), nullable=True),
        sa.Column("worker_pid", sa.Integer(), nullable=True),
        sa.Column("worker_start", sa.BigInteger(), nullable=True),
        sa.Column("run_started_at", UTCDateTime(), nullable=True),
        sa.Column("run_files", sa.BigInteger(), nullable=False),
        sa.Column("run_bytes", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("total_entries", sa.BigInteger(), nullable=True),
        sa.Column("total_files", sa.BigInteger(), nullable=True),
        sa.Column("total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("files_done", sa.BigInteger(), nullable=False),
        sa.Column("dirs_done", sa.BigInteger(), nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("skipped", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("current_path", sa.Text(), nullable=True),
        sa.Column("manifest_sha256", sa.String(64), nullable=True),
    )
    op.create_index("ix_restore_jobs_owner", "restore_jobs", ["owner"])
    op.create_index("ix_restore_jobs_status", "restore_jobs", ["status"])
    op.create_table(
        "restore_job_files",
        reference("job_id", sa.String(36), "restore_jobs.id", primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("written", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    with op.batch_alter_table("restore_mounts") as batch:
        batch.add_column(sa.Column("fuse_host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("fuse_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("fuse_start", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("restore_mounts") as batch:
        batch.drop_column("fuse_start")
        batch.drop_column("fuse_pid")
        batch.drop_column("fuse_host")
    op.drop_table("restore_job_files")
    op.drop_table("restore_jobs")
