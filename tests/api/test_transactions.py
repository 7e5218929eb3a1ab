# ruff: noqa: F811 - pytest fixtures imported from tests/dbfixtures.py are redefined as arguments
"""Database transactions a request costs before its first byte, on SQLite and PostgreSQL.

Counted with a listener on the engine's ``begin`` event while one request runs in process
(tests/api/txcount.py): a count, not a timing, so it holds on a loaded machine. Each path is
counted with the session's reader stack pooled in this process and cold (as in a worker
process that has not served the session yet), and with the session's expiry due to move
forward (a row write) or not.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from filerestore.api.app import create_app
from filerestore.service.tokens import create_token
from tests.api.txcount import TransactionCounter
from tests.dbfixtures import database_url, db, make_settings, pg_server_url, settings  # noqa: F401
from tests.imagebuild.catalog_repo import FILES
from tests.service.sessionsetup import backups  # noqa: F401

API = "/api/v1"
MOST_BEFORE_FIRST_BYTE = 2  # the token check and the session checkout


@pytest.fixture
def served(settings, db, backups):
    app = create_app(settings, cleanup=False)
    counter = TransactionCounter(app)
    headers = {"Authorization": f"Bearer {create_token(db, 'counted')[1]}"}
    r = counter.request("POST", f"{API}/restore/mount", headers, {"backup_id": backups["full"]})
    assert r.status == 201, r.body
    yield app, counter, headers, json.loads(r.body)["mount_id"]
    counter.close()
    app.state.filerestore.sessions.readers.close_all()
    app.state.filerestore.db.dispose()


CASES = pytest.mark.parametrize(
    ("pooled", "touch"),
    [(True, False), (False, False), (True, True), (False, True)],
    ids=["pooled", "cold", "pooled-touch", "cold-touch"],
)


def _prepare(app, pooled, touch):
    sessions = app.state.filerestore.sessions
    if touch:
        sessions.touch_granularity = timedelta(0)
    if not pooled:
        sessions.readers.close_all()


@CASES
def test_a_file_download(served, pooled, touch):
    app, counter, headers, mount_id = served
    _prepare(app, pooled, touch)
    r = counter.request("GET", f"{API}/restore/{mount_id}/download?path=/hello.txt", headers)
    assert (r.status, r.body) == (200, FILES["hello.txt"])
    assert r.before_head <= MOST_BEFORE_FIRST_BYTE
    assert r.total == r.before_head + 1  # the release: the hold's removal and the audit row


@CASES
def test_a_directory_listing(served, pooled, touch):
    app, counter, headers, mount_id = served
    _prepare(app, pooled, touch)
    r = counter.request("GET", f"{API}/restore/{mount_id}/files?path=/", headers)
    assert r.status == 200
    assert {e["name"] for e in json.loads(r.body)["entries"]} >= {"hello.txt", "docs"}
    assert r.before_head <= MOST_BEFORE_FIRST_BYTE
    assert r.total == r.before_head  # without a hold the release touches no database
