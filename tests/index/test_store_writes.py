"""Bulk writes of an index pass (filerestore.index.store): ending versions in chunks, and
the statistics PostgreSQL's planner is given after a large pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from filerestore.catalog import add_repository
from filerestore.db import Database
from filerestore.db.models import Repository
from filerestore.db.models_index import IndexLine
from filerestore.index.lines import volume_row
from filerestore.index.store import (
    ANALYZE_MIN_ROWS,
    CLOSE_CHUNK,
    PLAIN_VERSION_COLUMNS,
    IndexStore,
    refresh_statistics,
)


def _volume(db: Database, tmp_path: Path) -> int:
    add_repository(db, "r", str(tmp_path))
    with db.write() as s:
        repository_id = s.query(Repository.id).scalar()
        line = IndexLine(repository_id=repository_id)
        s.add(line)
        s.flush()
        return volume_row(s, line.id, "p1", "ext4").id


def test_versions_ended_in_chunks_are_every_one_asked_for(db: Database, tmp_path: Path) -> None:
    volume_id = _volume(db, tmp_path)
    count = CLOSE_CHUNK * 2 + 50
    row = dict.fromkeys(PLAIN_VERSION_COLUMNS)
    with db.write() as s:
        store = IndexStore(s)
        rows = []
        for i in range(count):
            row.update(parent_no=1, name_id=i + 1, kind=1, size=i, inode=i + 100)
            rows.append(tuple(row[c] for c in PLAIN_VERSION_COLUMNS))
        store.insert_versions(volume_id, 1, rows, plain=True)
    ended = [(1, i + 1) for i in range(count) if i % 7]  # all but every seventh
    with db.write() as s:
        IndexStore(s).close_versions(volume_id, ended, 3)
    with db.read() as s:
        got = s.execute(text("SELECT name_id, last_seq FROM index_versions")).all()
    assert {n: last for n, last in got} == {
        i + 1: (None if i % 7 == 0 else 3) for i in range(count)
    }


def _reltuples(db: Database) -> float:
    with db.read() as s:
        return float(
            s.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = 'index_versions'::regclass")
            ).scalar_one()
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_large_pass_leaves_the_tables_analyzed(db: Database) -> None:
    """-1 is PostgreSQL's "never analyzed"; ANALYZE of the (empty) table makes it 0."""
    assert _reltuples(db) == -1
    refresh_statistics(db, ANALYZE_MIN_ROWS - 1)  # a small pass: left to autovacuum
    assert _reltuples(db) == -1
    refresh_statistics(db, ANALYZE_MIN_ROWS)
    assert _reltuples(db) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_statistics_are_left_alone_on_sqlite(db: Database) -> None:
    refresh_statistics(db, ANALYZE_MIN_ROWS * 10)  # no ANALYZE: SQLite plans by hints here
    with db.read() as s:
        assert (
            s.execute(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).scalar_one()
            == 0
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_statistics_not_refreshed_leave_the_pass_alone(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The pass is committed when its statistics are refreshed: a database gone by then is
    a warning, not a failed pass."""
    gone = Database(
        make_url(database_url).set(database="fr_no_such_database").render_as_string(False)
    )
    try:
        refresh_statistics(gone, ANALYZE_MIN_ROWS)
    finally:
        gone.dispose()
    assert "not analyzed" in caplog.text
