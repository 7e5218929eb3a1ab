"""A runner killed mid-job (SIGKILL of its worker process): another worker's runner takes the
job over and completes it; files the manifest held as done and verified are not written
again (same inode, same ctime), the file in flight is redone, and the tree matches its
source. On SQLite (one runner at a time, the lock passing to the other worker) and on
PostgreSQL (every worker's runner claiming with SKIP LOCKED)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time

import pytest
from sqlalchemy import text

from filerestore.db.engine import Database
from tests.dbfixtures import database_url, pg_server_url  # noqa: F401 (fixtures)
from tests.imagebuild.restore_tree import restore_tree
from tests.jobs.conftest import API, JobsEnv, start_server
from tests.jobs.treecheck import compare
from tests.sshserver.sshd import Sshd


def _db(env: JobsEnv, url: str | None) -> Database:
    return Database(url or f"sqlite:///{env.state_dir / 'filerestore.db'}")


def _sha256sums(root, names: list[str]) -> dict[str, str]:
    out = subprocess.run(
        ["sha256sum", "--", *names], cwd=root, capture_output=True, text=True, check=True
    )
    return {line[66:]: line[:64] for line in out.stdout.splitlines()}


@pytest.mark.timeout(900)
def test_a_killed_worker_s_job_is_resumed(tmp_path, sshd: Sshd, database_url: str | None) -> None:  # noqa: F811
    server, backups, tokens, local_root, repo, env = start_server(tmp_path, sshd, database_url)
    jobs = JobsEnv(
        server,
        tokens,
        backups,
        sshd,
        restore_tree(),
        restore_tree(),
        local_root,
        tmp_path / "state",
        env,
    )
    db = _db(jobs, database_url)
    try:
        mount = jobs.mount()
        r = jobs.create(
            mount_id=mount,
            paths=["/many", "/big-sparse.bin", "/docs"],
            target="local",
            destination="resume",
        )
        assert r.status_code == 201, r.text
        job_id = r.json()["job_id"]
        with jobs.client() as c:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                job = c.get(f"{API}/restore/jobs/{job_id}").json()
                if job["status"] == "running" and job["progress"]["files_done"] >= 300:
                    break
                time.sleep(0.05)
        assert job["status"] == "running", job
        with db.engine.connect() as conn:
            pid = conn.execute(
                text("SELECT worker_pid FROM restore_jobs WHERE id = :id"), {"id": job_id}
            ).scalar()
        assert pid in server.worker_pids()
        os.kill(pid, signal.SIGKILL)
        # what the manifest holds as done at the kill, and those files as they are now
        with db.engine.connect() as conn:
            done = [
                row[0].decode()
                for row in conn.execute(
                    text(
                        "SELECT written FROM restore_job_files WHERE job_id = :id"
                        " AND status = 'done' AND kind = 'file'"
                    ),
                    {"id": job_id},
                )
            ]
        dest = local_root / "resume"
        before = {w: ((dest / w).stat().st_ino, (dest / w).stat().st_ctime_ns) for w in done}
        assert len(before) >= 300

        job = jobs.wait(job_id)
        assert job["status"] == "completed", job
        assert job["attempts"] == 2
        assert job["progress"]["failed"] == 0
        after = {w: ((dest / w).stat().st_ino, (dest / w).stat().st_ctime_ns) for w in before}
        assert after == before  # not written again

        many = jobs.tree / "many"
        names = sorted(os.listdir(many))
        assert sorted(os.listdir(dest / "many")) == names
        for name in names:
            src, dst = (many / name).lstat(), (dest / "many" / name).lstat()
            assert (stat.S_IMODE(dst.st_mode), dst.st_size, dst.st_mtime) == (
                stat.S_IMODE(src.st_mode),
                src.st_size,
                int(src.st_mtime),  # the image keeps seconds
            )
        assert _sha256sums(dest / "many", names) == _sha256sums(many, names)
        assert compare(jobs.tree, dest, ["/docs"]) > 5
        big = dest / "big-sparse.bin"
        assert big.stat().st_size == (jobs.tree / "big-sparse.bin").stat().st_size
        assert big.stat().st_blocks * 512 < 1 << 20
        with db.engine.connect() as conn:
            events = conn.execute(
                text(
                    "SELECT outcome FROM audit_events"
                    " WHERE action = 'restore_job' AND detail LIKE :id"
                ),
                {"id": f"%{job_id}%"},
            ).all()
            holds = conn.execute(text("SELECT count(*) FROM download_holds")).scalar()
        assert [e[0] for e in events] == ["ok"]
        assert holds == 0
    finally:
        db.dispose()
        server.stop()
        shutil.rmtree(repo, ignore_errors=True)
