"""Migrations: created on first start, round trip (upgrade, downgrade, upgrade) on both
databases, and the models match what the migrations create."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import filerestore.db.models_auth
import filerestore.db.models_jobs  # noqa: F401 - restore jobs, created by migration 0003
from filerestore.db import open_database
from filerestore.db.migrate import current_revision, downgrade, head_revision, upgrade
from filerestore.db.models import Base
from filerestore.db.models_index import include_object_for

TABLES = {
    "repositories",
    "backups",
    "restore_mounts",
    "download_holds",
    "audit_events",
    "restore_jobs",
    "restore_job_files",
}


def tables(db):
    return set(inspect(db.engine).get_table_names())


def test_first_start_creates_and_migrates(settings, db):
    assert current_revision(db) == head_revision()
    assert tables(db) >= TABLES
    if db.dialect == "sqlite":
        assert settings.sqlite_path.is_file()
        with db.read() as s:
            assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_round_trip(db):
    downgrade(db, "base")
    assert current_revision(db) is None
    assert not TABLES & tables(db)
    upgrade(db)
    assert current_revision(db) == head_revision()
    assert tables(db) >= TABLES
    downgrade(db, "base")
    upgrade(db, "head")
    assert tables(db) >= TABLES


def test_models_match_migrations(db):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object_for(db.dialect)}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_second_start_is_a_no_op(settings, db):
    again = open_database(settings)
    try:
        assert current_revision(again) == head_revision()
    finally:
        again.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no GIN
def test_name_trigram_index_has_a_small_pending_list(db):
    """The GIN trigram index is written through a pending list of 64 kB (migration 0006),
    as PostgreSQL's own catalog says."""
    with db.read() as s:
        options = s.execute(
            text("SELECT reloptions FROM pg_class WHERE relname = 'ix_index_names_trgm'")
        ).scalar_one()
    assert sorted(options) == ["fastupdate=on", "gin_pending_list_limit=64"]
