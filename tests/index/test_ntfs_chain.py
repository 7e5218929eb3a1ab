"""An NTFS chain of three backups (each step made through ntfs-3g), indexed on SQLite and
PostgreSQL: the incrementals take the changed-record pass (only the MFT records the overlay
changed are read), and what it writes must be what ntfs-3g saw in each state and exactly
what the whole-tree comparing walk writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from filerestore.db import open_database
from filerestore.db.models_index import IndexBackup
from filerestore.index.passes import index_backup
from filerestore.settings import Settings
from tests.index.conftest import Chain, indexed_chain, make_repository, module_settings
from tests.index.test_chain import state_problems
from tests.index.test_jobs import dump

DIALECTS = ("sqlite", "postgresql")
#: what ntfs-3g reports that NTFS stores (mode, owner and group are the mount's, not the disk's)
FIELDS = ("kind", "mtime_ns", "ctime_ns", "inode", "nlink", "target")


@pytest.fixture(scope="module", params=DIALECTS)
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    tmp = tmp_path_factory.mktemp("ntfs")
    with module_settings(request.param, request, tmp / "state") as settings:
        yield from indexed_chain("ntfs", settings, tmp)


def test_the_incrementals_take_the_changed_record_pass(chain: Chain) -> None:
    with chain.db.read() as s:
        methods = dict(s.execute(select(IndexBackup.backup_id, IndexBackup.method)).all())
        rows = dict(s.execute(select(IndexBackup.backup_id, IndexBackup.rows_added)).all())
    assert [methods[i] for i in chain.ids] == ["full", "changed-blocks", "changed-blocks"]
    # an incremental writes what changed, not the tree: a few rows against the full's 340
    assert rows[chain.ids[0]] > 300
    assert 0 < rows[chain.ids[1]] < 40 and 0 < rows[chain.ids[2]] < 40


def test_every_backup_holds_what_ntfs3g_saw(chain: Chain) -> None:
    assert state_problems(chain, FIELDS) == []


def test_the_pass_writes_what_the_whole_walk_writes(chain: Chain, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "walked")
    other = open_database(settings)
    try:
        repo = make_repository("ntfs", tmp_path / "repo")
        from tests.index.conftest import register_chain

        for backup_id in register_chain(other, repo):
            index_backup(other, settings, backup_id, method="walk-diff")
        assert dump(other) == dump(chain.db)
    finally:
        other.dispose()
