"""Issue 8, defects 9 and 8, against real servers: one token cannot take every slot (a
per-owner quota, 429 ``session_quota``), a full host answers 429 ``session_limit`` with
``Retry-After`` instead of 409 (or, with ``mount_wait_timeout``, the mount waits for a
slot), and the refusal shows a non-admin only its own sessions (an admin: all of them).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from filerestore import catalog
from filerestore.db.engine import Database
from filerestore.service.tokens import create_token
from tests.api.site import API, Site, running, start


def add_users(site: Site, *names: str) -> dict[str, str]:
    db = Database(site.db_url)
    try:
        return {n: create_token(db, f"{n}-{site.server.port}")[1] for n in names}
    finally:
        db.dispose()


def add_backup(site: Site, name: str) -> int:
    """Another backup: a hard link of the same image under another name."""
    repo = site.state.parent / "repo"
    os.link(repo / "disk.img", repo / name)
    db = Database(site.db_url)
    try:
        return catalog.register_backup(db, "main", name).id
    finally:
        db.dispose()


def mount(site: Site, token: str, backup_id: int) -> httpx.Response:
    with site.client(token) as c:
        return c.post(f"{API}/restore/mount", json={"backup_id": backup_id})


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    env = {"FILERESTORE_MAX_SESSIONS": "2", "FILERESTORE_MAX_SESSIONS_PER_OWNER": "1"}
    with running(tmp_path_factory.mktemp("quota"), "quota", env) as site:
        yield site


def test_quota_and_a_full_host_answer_429_with_retry_after(full: Site) -> None:
    users = add_users(full, "bob", "carol")
    second = add_backup(full, "disk2.img")
    alice = mount(full, full.token, full.backup_id)
    assert alice.status_code == 201
    again = mount(full, full.token, second)  # one session is alice's whole quota
    assert again.status_code == 429 and again.json()["error"]["code"] == "session_quota"
    assert int(again.headers["retry-after"]) >= 1
    bob = mount(full, users["bob"], full.backup_id)
    assert bob.status_code == 201  # the host had a slot for another token
    ids = [alice.json()["mount_id"], bob.json()["mount_id"]]
    carol = mount(full, users["carol"], full.backup_id)
    assert carol.status_code == 429, carol.text
    assert carol.json()["error"]["code"] == "session_limit"
    assert int(carol.headers["retry-after"]) >= 1
    message = carol.json()["error"]["message"]
    assert "2 of 2" in message
    for hidden in (*ids, "bob", "alice"):
        assert hidden not in message  # another user's sessions are not shown
    by_admin = mount(full, full.admin, full.backup_id)
    assert by_admin.status_code == 429
    assert all(i in by_admin.json()["error"]["message"] for i in ids)


def test_a_mount_waits_for_a_slot(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"FILERESTORE_MAX_SESSIONS": "1", "FILERESTORE_MOUNT_WAIT_TIMEOUT": "120"}
    site = start(tmp_path_factory.mktemp("quota"), "wait", env)
    try:
        users = add_users(site, "bob")
        first = mount(site, site.token, site.backup_id)
        assert first.status_code == 201
        answer: list[httpx.Response] = []
        waiter = threading.Thread(
            target=lambda: answer.append(mount(site, users["bob"], site.backup_id))
        )
        waiter.start()
        log = Path(site.log)
        waiter.join(2)  # bob's request is in, waiting (not refused at once)
        assert waiter.is_alive() and not answer
        with site.client() as c:
            gone = c.delete(f"{API}/restore/{first.json()['mount_id']}")
            assert gone.status_code == 204
        waiter.join(120)
        assert answer and answer[0].status_code == 201, answer
        assert "Traceback" not in log.read_text(errors="replace")
    finally:
        site.server.stop()
