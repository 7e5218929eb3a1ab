"""NTFS and XFS chains of three backups (each step made through ntfs-3g or the kernel),
indexed on SQLite and PostgreSQL: the incrementals take the changed-block pass (only the MFT
records or XFS inode chunks the overlay changed are read), and what it writes must be what
the mount saw in each state and exactly what the whole-tree comparing walk writes. (ext's
incrementals are held to the same in tests/index/test_jobs.py.)"""

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

KINDS = ("ntfs", "xfs")
DIALECTS = ("sqlite", "postgresql")
#: what the mount reports that the filesystem stores (ntfs-3g: mode, owner and group are the
#: mount's, not the disk's)
FIELDS = {
    "ntfs": ("kind", "mtime_ns", "ctime_ns", "inode", "nlink", "target"),
    "xfs": ("kind", "mode", "uid", "gid", "mtime_ns", "ctime_ns", "inode", "nlink", "target"),
}


@pytest.fixture(scope="module", params=[(k, d) for k in KINDS for d in DIALECTS], ids="-".join)
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    kind, dialect = request.param
    tmp = tmp_path_factory.mktemp(kind)
    with module_settings(dialect, request, tmp / "state") as settings:
        yield from indexed_chain(kind, settings, tmp)


def test_the_incrementals_take_the_changed_block_pass(chain: Chain) -> None:
    with chain.db.read() as s:
        methods = dict(s.execute(select(IndexBackup.backup_id, IndexBackup.method)).all())
        rows = dict(s.execute(select(IndexBackup.backup_id, IndexBackup.rows_added)).all())
    assert [methods[i] for i in chain.ids] == ["full", "changed-blocks", "changed-blocks"]
    # an incremental writes what changed, not the tree: a few rows against the full's 340
    assert rows[chain.ids[0]] > 300
    assert 0 < rows[chain.ids[1]] < 40 and 0 < rows[chain.ids[2]] < 40


def test_every_backup_holds_what_the_mount_saw(chain: Chain) -> None:
    assert state_problems(chain, FIELDS[chain.kind]) == []


def test_the_pass_writes_what_the_whole_walk_writes(chain: Chain, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "walked")
    other = open_database(settings)
    try:
        repo = make_repository(chain.kind, tmp_path / "repo")
        from tests.index.conftest import register_chain

        for backup_id in register_chain(other, repo):
            index_backup(other, settings, backup_id, method="walk-diff")
        assert dump(other) == dump(chain.db)
    finally:
        other.dispose()
