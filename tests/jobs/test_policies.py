"""Conflict policies (skip, rename, overwrite), and cancelling a job."""

from __future__ import annotations

import time
from typing import Any

from tests.jobs.conftest import API, JobsEnv, sha256sum

DOCS_FILES = 6  # readme.md, data.bin, script.sh, hello-hardlink.txt, link-escape, sub/nested.txt


def test_skip_rename_overwrite(jobs_env: JobsEnv) -> None:
    mount = jobs_env.mount()
    spec: dict[str, Any] = {
        "mount_id": mount,
        "paths": ["/docs"],
        "target": "local",
        "destination": "pol",
    }
    assert jobs_env.run(**spec)["status"] == "completed"
    docs = jobs_env.local_root / "pol" / "docs"
    original = sha256sum(jobs_env.tree / "docs" / "readme.md")
    (docs / "readme.md").write_bytes(b"changed since\n")
    changed = sha256sum(docs / "readme.md")

    job = jobs_env.run(**spec, policy="skip")
    assert (job["progress"]["skipped"], job["progress"]["files_done"]) == (DOCS_FILES, 0)
    assert sha256sum(docs / "readme.md") == changed

    job = jobs_env.run(**spec, policy="rename")
    assert job["progress"]["files_done"] == DOCS_FILES
    assert sha256sum(docs / "readme.md") == changed
    assert sha256sum(docs / "readme.restored-1.md") == original
    assert sha256sum(docs / "sub" / "nested.restored-1.txt") == sha256sum(
        jobs_env.tree / "docs" / "sub" / "nested.txt"
    )
    renamed = {e["written"] for e in jobs_env.manifest(job["job_id"]) if e["note"] == "renamed"}
    assert "docs/readme.restored-1.md" in renamed

    job = jobs_env.run(**spec, policy="overwrite")
    assert job["progress"]["files_done"] == DOCS_FILES
    assert sha256sum(docs / "readme.md") == original
    assert sha256sum(docs / "readme.restored-1.md") == original  # the rename's copy stays


def test_cancel(jobs_env: JobsEnv) -> None:
    mount = jobs_env.mount()
    r = jobs_env.create(
        mount_id=mount, paths=["/many", "/big-sparse.bin"], target="local", destination="cancelled"
    )
    assert r.status_code == 201
    job_id = r.json()["job_id"]
    with jobs_env.client() as c:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = c.get(f"{API}/restore/jobs/{job_id}").json()
            if job["status"] == "running" and job["progress"]["files_done"] > 0:
                break
            time.sleep(0.05)
        assert job["status"] == "running", job
        r = c.post(f"{API}/restore/jobs/{job_id}/cancel")
        assert r.status_code == 200 and r.json()["cancel_requested"] is True
    job = jobs_env.wait(job_id)
    assert job["status"] == "cancelled"
    assert job["progress"]["files_done"] < job["progress"]["total_files"]
    with jobs_env.client() as c:
        again = c.post(f"{API}/restore/jobs/{job_id}/cancel")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "job_state")
    events = [e for e in jobs_env.audit("restore_job") if job_id in e["detail"]]
    assert [e["outcome"] for e in events] == ["cancelled"]
