"""Restore jobs over SFTP into a real sshd on loopback, as an unprivileged account: what SFTP
carries (modes, seconds of mtime, symlinks, hard links, holes) checked with stat, sha256sum
and lseek; what it cannot carry (owners for a non-root account, xattrs) said by the job."""

from __future__ import annotations

import os
from typing import Any

from filerestore.restore.targets.base import FileWrite, Meta
from filerestore.restore.targets.sftp import STATS_BEFORE_LISTING, SftpTarget
from filerestore.restore.targets.sftp_connection import Endpoint
from tests.jobs.conftest import SELECTION, JobsEnv, sha256sum
from tests.jobs.treecheck import compare
from tests.sshserver.sshd import Sshd

MiB = 1 << 20


def test_a_selection_is_restored_over_sftp(jobs_env: JobsEnv) -> None:
    mount = jobs_env.mount()
    job = jobs_env.run(mount_id=mount, paths=SELECTION, target="remote", destination="sel")
    assert job["status"] == "completed", job
    dest = jobs_env.sshd.area / "sel"
    account = (jobs_env.sshd.user.pw_uid, jobs_env.sshd.user.pw_gid)
    assert compare(jobs_env.tree, dest, SELECTION, owner=account) > 30
    assert job["progress"]["failed"] == 0
    assert sorted(job["unkept"]) == [
        "extended attributes: SFTP cannot carry them",
        "owners: the remote host refused to change them (not root)",
    ]
    assert (dest / "hello.txt").stat().st_ino == (
        dest / "docs" / "hello-hardlink.txt"
    ).stat().st_ino
    with (dest / "sparse.bin").open("rb") as f:
        assert os.lseek(f.fileno(), 64 * 1024, os.SEEK_DATA) == 32 * MiB
    assert (dest / "sparse.bin").stat().st_blocks * 512 <= 1 * MiB


def test_a_host_with_another_key_is_refused(jobs_env: JobsEnv) -> None:
    mount = jobs_env.mount()
    job = jobs_env.run(mount_id=mount, paths=["/hello.txt"], target="wrong-key", destination="x")
    assert job["status"] == "failed"
    assert job["error"].startswith("host_key_refused:")
    assert not (jobs_env.sshd.area / "x").exists()


def test_a_link_planted_on_the_remote_is_never_followed(jobs_env: JobsEnv, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o777)
    area = jobs_env.sshd.area
    (area / "planted").mkdir()
    os.chown(area / "planted", jobs_env.sshd.user.pw_uid, jobs_env.sshd.user.pw_gid)
    (area / "via-link").symlink_to(outside)
    mount = jobs_env.mount()
    job = jobs_env.run(mount_id=mount, paths=["/docs"], target="remote", destination="via-link/x")
    assert job["status"] == "failed"
    assert job["error"].startswith("destination_escape:")
    (area / "planted" / "docs").symlink_to(outside)
    job = jobs_env.run(
        mount_id=mount, paths=["/docs"], target="remote", destination="planted", policy="overwrite"
    )
    assert job["status"] == "completed", job
    assert not (area / "planted" / "docs").is_symlink()
    assert (area / "planted" / "docs" / "readme.md").is_file()
    assert list(outside.iterdir()) == []


def test_conflict_policies_over_sftp(jobs_env: JobsEnv) -> None:
    """The same selection again into the same remote directory, with each policy. hostile/
    holds more entries than the target looks up one ``lstat`` at a time: the rest of its
    conflict checks read one listing of the directory, kept true to what the job did."""
    mount = jobs_env.mount()
    spec: dict[str, Any] = {
        "mount_id": mount,
        "paths": ["/hostile", "/docs"],
        "target": "remote",
        "destination": "pol",
    }
    first = jobs_env.run(**spec)
    assert first["status"] == "completed" and first["progress"]["failed"] == 0, first
    written, skipped = first["progress"]["files_done"], first["progress"]["skipped"]
    source, dest = jobs_env.tree / "hostile", jobs_env.sshd.area / "pol" / "hostile"
    files = sorted(p.name for p in source.iterdir() if p.is_file() and not p.is_symlink())
    looked_up = [p for p in source.iterdir() if not p.is_fifo()]  # a FIFO is never written
    assert len(looked_up) > STATS_BEFORE_LISTING
    for name in files:
        (dest / name).write_bytes(b"changed since\n")

    job = jobs_env.run(**spec, policy="skip")
    assert (job["progress"]["files_done"], job["progress"]["skipped"]) == (0, written + skipped)
    assert {(dest / name).read_bytes() for name in files} == {b"changed since\n"}

    job = jobs_env.run(**spec, policy="rename")
    assert (job["progress"]["files_done"], job["progress"]["failed"]) == (written, 0), job
    renamed = [e for e in jobs_env.manifest(job["job_id"]) if e["note"] == "renamed"]
    assert len(renamed) == written
    copies = [
        sha256sum(jobs_env.sshd.area / "pol" / e["written"])
        for e in renamed
        if e["kind"] == "file" and e["written"].rpartition("/")[0] == "hostile"
    ]
    assert sorted(copies) == sorted(sha256sum(source / name) for name in files)
    assert {(dest / name).read_bytes() for name in files} == {b"changed since\n"}

    job = jobs_env.run(**spec, policy="overwrite")
    assert (job["progress"]["files_done"], job["progress"]["failed"]) == (written, 0), job
    for name in files:
        assert sha256sum(dest / name) == sha256sum(source / name)


def test_a_hard_link_right_after_its_file_is_made_after_it(sshd: Sshd) -> None:
    """Small files wait in a queue for the connection's loop; a hard link asked for right
    after its file (still queued) goes out after the file's creation."""
    endpoint = Endpoint(
        sshd.host, sshd.port, sshd.user.pw_name, str(sshd.area), (sshd.client_key,),
        sshd.known_hosts,
    )  # fmt: skip
    target = SftpTarget(endpoint, [b"links"])
    try:
        meta = Meta(0o644, None, None, None, None)
        for i in range(4):
            target.write_file((), b"f%d" % i, FileWrite(6, [(0, b"hello\n")], meta, i))
            target.hardlink((), b"f%d" % i, (), b"l%d" % i)
        assert target.flush() == []
    finally:
        target.close()
    dest = sshd.area / "links"
    for i in range(4):
        assert (dest / f"l{i}").stat().st_ino == (dest / f"f{i}").stat().st_ino
        assert (dest / f"l{i}").read_bytes() == b"hello\n"
