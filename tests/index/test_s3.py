# ruff: noqa: F811 - pytest fixtures imported from tests/dbfixtures.py and tests/s3server
"""A chain of backups held in an S3 repository (moto's server, through the latency proxy) is
indexed by index jobs through the session service's opener, as the service's runners run
them, on SQLite and PostgreSQL; search and history then answer what the kernel saw in each
state of the chain (tests/imagebuild/index_chain.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from filerestore.catalog import add_repository, list_backups, scan_repository
from filerestore.db import Database
from filerestore.index import jobs
from filerestore.index.diff import BackupDiff
from filerestore.index.hashing import ContentHashes
from filerestore.index.history import path_history
from filerestore.index.search import SearchQuery, search
from filerestore.service.index_slots import SessionSlots
from filerestore.service.sessions import SessionManager
from filerestore.settings import S3Credentials, Settings
from tests.dbfixtures import database_url, db, make_settings, pg_server_url  # noqa: F401
from tests.imagebuild.index_chain import NAMES, facts, index_chain
from tests.index.conftest import make_repository
from tests.s3server.fixtures import bucket, moto, proxy, s3, upload_tree  # noqa: F401
from tests.s3server.servers import ACCESS_KEY, SECRET_KEY

SECRET_ENV = "FR_TEST_INDEX_S3_"


@pytest.fixture
def settings(make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose repository "nightly" reads its credentials from the environment."""
    monkeypatch.setenv(f"{SECRET_ENV}ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv(f"{SECRET_ENV}SECRET_ACCESS_KEY", SECRET_KEY)
    found: Settings = make_settings(
        s3_credentials={"nightly": S3Credentials(env_prefix=SECRET_ENV)},
        block_cache_dir=tmp_path / "blocks",
        s3_connect_timeout=1.0,
        s3_request_timeout=5.0,
        s3_retries=2,
    )
    return found


def test_a_chain_in_s3_is_indexed_and_searched(
    db: Database, settings: Settings, s3: Any, bucket: str, proxy: Any, tmp_path: Path
) -> None:
    upload_tree(s3, bucket, "vm", make_repository("ext4", tmp_path / "local"))
    chain = index_chain("ext4")
    manager = SessionManager(db, settings)
    try:
        stores = manager.stores
        add_repository(db, "nightly", f"s3://{bucket}/vm", endpoint=proxy.endpoint, stores=stores)
        assert scan_repository(db, "nightly", stores=stores).errors == []
        by_path = {b.path: b.id for b in list_backups(db, "nightly", stores)}
        b0, b1, b2 = (by_path[f"{name}.qcow2"] for name in NAMES)
        assert len(jobs.enqueue_unindexed(db)) == 3
        outcomes, opener = [], SessionSlots(manager)
        while (outcome := jobs.run_one_job(db, settings, opener=opener)) is not None:
            outcomes.append(outcome)
        assert [o.state for o in outcomes] == ["done"] * 3, outcomes
        assert manager.live_count() == 0  # every pass gave its slot back

        allowed = {b0, b1, b2}
        page = search(db, SearchQuery(name="REPORT"), allowed)
        got = {h.path: _held(h) for h in page.hits}
        assert got == {
            "/docs/report-2024.xlsx": [b0],
            "/docs/report-2024-final.xlsx": [b1, b2],
            "/docs/report-2025.xlsx": [b1, b2],
        }
        kernel = facts(chain, 2)
        for hit in search(db, SearchQuery(glob="img_000?.jpg", limit=100), allowed).hits:
            newest = hit.versions[-1]
            assert b2 in [b.backup_id for b in newest.backups], hit.path
            want = kernel[hit.path]
            assert (newest.size, newest.mtime_ns, newest.inode) == (
                want["size"],
                want["mtime_ns"],
                want["inode"],
            ), hit.path

        history = path_history(db, b2, "/docs/readme.md", allowed)
        assert [(e.event, e.backup.backup_id) for e in history.events] == [
            ("appeared", b0),
            ("changed", b1),
        ]
        sizes = [facts(chain, state)["/docs/readme.md"]["size"] for state in (0, 1)]
        assert [v.size for v in history.versions] == sizes

        # contents the index holds no hash of are read from the bucket to compare them
        hashes = ContentHashes(db, settings, stores)
        try:
            diff = BackupDiff(db, b1, b2, allowed, path="/photos", content=True, hashes=hashes)
            changed = {e.path: e.content_changed for e in diff if e.change == "changed"}
        finally:
            hashes.close()
        old, new = facts(chain, 1), facts(chain, 2)
        assert changed == {p: old[p]["sha256"] != new[p]["sha256"] for p in changed}
        assert changed["/photos/img_0003.jpg"] is True  # same size and mtime, new bytes
    finally:
        manager.stores.close()


def _held(hit: Any) -> list[int]:
    return sorted(b.backup_id for v in hit.versions for b in v.backups)
