"""Issue 8, defect 8, against a real server: a non-admin is told no host path (not in
``/repositories``, not in an error message about a backup's image), an admin is told
everything; the session-limit refusal is in tests/api/test_session_quota.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from filerestore import catalog
from filerestore.api.redact import Redactor
from filerestore.db.engine import Database
from tests.api.site import API, Site, running


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with running(tmp_path_factory.mktemp("exposure"), "exposure", {}) as site:
        yield site


def test_repositories_show_root_paths_to_admins_only(site: Site) -> None:
    root = str(site.state.parent / "repo")
    with site.client() as c:
        (repo,) = c.get(f"{API}/repositories").json()["repositories"]
    assert repo["name"] == "main" and root not in repo["root_path"]
    with site.client(site.admin) as c:
        (repo,) = c.get(f"{API}/repositories").json()["repositories"]
    assert repo["root_path"] == root


def test_errors_name_no_host_path_to_a_non_admin(site: Site) -> None:
    repo = site.state.parent / "repo"
    os.link(repo / "disk.img", repo / "gone.img")
    db = Database(site.db_url)
    try:
        backup_id = catalog.register_backup(db, "main", "gone.img").id
    finally:
        db.dispose()
    (repo / "gone.img").unlink()  # the backup's file disappears after registration
    with site.client(site.admin) as c:
        told_admin = c.post(f"{API}/restore/mount", json={"backup_id": backup_id})
    with site.client() as c:
        told_user = c.post(f"{API}/restore/mount", json={"backup_id": backup_id})
    assert told_admin.status_code == told_user.status_code == 404, told_user.text
    message = told_user.json()["error"]["message"]
    assert str(repo) not in message and str(site.state) not in message
    assert "gone.img" in message and "'main'" in message


def test_the_redactor_replaces_host_prefixes_only(site: Site) -> None:
    """What a non-admin's error messages go through (filerestore.api.redact), on the
    server's own database: repository roots by name, the state directory, /proc paths;
    guest paths untouched."""
    repo = site.state.parent / "repo"
    db = Database(site.db_url)
    try:
        redact = Redactor(db, site.state)
        text = (
            f"backing file {repo}/sub/base.qcow2 refused; see {site.state}/filerestore.db "
            "and /proc/self/fd/7: reading /docs/readme.md"
        )
        assert redact(text) == (
            "backing file <repository main>/sub/base.qcow2 refused; see "
            "<state directory>/filerestore.db and <host path>: reading /docs/readme.md"
        )
    finally:
        db.dispose()
