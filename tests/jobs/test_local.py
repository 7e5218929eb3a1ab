"""Restore jobs into a local target: metadata, links, sparse files, xattrs, the manifest and
the audit event, checked against the source trees with stat, sha256sum and getfattr."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.imagebuild.fs_xattrs import dump
from tests.jobs.conftest import API, SELECTION, JobsEnv, sha256sum
from tests.jobs.treecheck import compare

MiB = 1 << 20


def test_a_selection_is_restored_with_its_metadata(jobs_env: JobsEnv) -> None:
    mount = jobs_env.mount()
    job = jobs_env.run(mount_id=mount, paths=SELECTION, target="local", destination="sel/out")
    assert job["status"] == "completed", job
    dest = jobs_env.local_root / "sel" / "out"
    compared = compare(jobs_env.tree, dest, SELECTION)
    assert compared > 30
    progress = job["progress"]
    assert progress["failed"] == 0
    assert progress["skipped"] == 1  # hostile/fifo
    assert progress["percent"] == 100.0
    assert job["unkept"] == []
    # a hard link stays one: the copy made first and the later name share an inode
    assert (dest / "hello.txt").stat().st_ino == (
        dest / "docs" / "hello-hardlink.txt"
    ).stat().st_ino
    # holes stay holes: 64 KiB of data, 32 MiB of hole, 64 KiB of data
    with (dest / "sparse.bin").open("rb") as f:
        fd = f.fileno()
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 64 * 1024
        assert os.lseek(fd, 64 * 1024, os.SEEK_DATA) == 32 * MiB
    assert (dest / "sparse.bin").stat().st_blocks * 512 <= 1 * MiB


def test_manifest_and_audit_event(jobs_env: JobsEnv) -> None:
    mount = jobs_env.mount()
    job = jobs_env.run(
        mount_id=mount, paths=["/docs", "/hello.txt"], target="local", destination="manifest"
    )
    assert job["status"] == "completed", job
    entries = jobs_env.manifest(job["job_id"])
    files = {e["path"]: e for e in entries if e["kind"] in ("file", "hardlink")}
    source = {
        "/" + str(p.relative_to(jobs_env.tree)): p
        for top in ("docs", "hello.txt")
        for p in (
            [jobs_env.tree / top]
            if (jobs_env.tree / top).is_file()
            else (jobs_env.tree / top).rglob("*")
        )
        if p.is_file() and not p.is_symlink()
    }
    assert set(files) == set(source)
    for path, entry in files.items():
        assert entry["status"] == "done"
        assert entry["sha256"] == sha256sum(source[path])
        assert entry["size"] == source[path].stat().st_size
    events = [e for e in jobs_env.audit("restore_job") if job["job_id"] in e["detail"]]
    assert len(events) == 1
    event = events[0]
    assert event["outcome"] == "ok"
    assert event["bytes"] == sum(p.stat().st_size for p in source.values())
    assert f"sha256 {job['manifest_sha256']}" in event["detail"]
    written = [e for e in entries if e["kind"] != "dir" and e["status"] == "done"]
    assert re.search(rf"\b{len(written)} files", event["detail"])  # links are files here too


def test_extended_attributes_are_restored(jobs_env: JobsEnv) -> None:
    mount = jobs_env.mount("xattrs")
    job = jobs_env.run(mount_id=mount, paths=["/"], target="local", destination="xattrs")
    assert job["status"] == "completed", job
    restored = jobs_env.local_root / "xattrs"
    (restored / "lost+found").rmdir()  # the image's own, not in the tree
    assert dump(restored) == dump(jobs_env.xattr_tree)


def test_targets_are_listed_by_name(jobs_env: JobsEnv) -> None:
    with jobs_env.client("alice") as c:
        listed = c.get(f"{API}/restore/targets").json()["targets"]
    assert {(t["name"], t["kind"], t["location"]) for t in listed} == {
        ("local", "local", None),
        ("remote", "sftp", None),
        ("wrong-key", "sftp", None),
    }
    with jobs_env.client("admin") as c:
        listed = c.get(f"{API}/restore/targets").json()["targets"]
    assert {t["name"]: t["location"] for t in listed}["local"] == str(jobs_env.local_root)


def test_jobs_belong_to_their_creator(jobs_env: JobsEnv) -> None:
    mount = jobs_env.mount()
    # bob cannot use alice's session, nor see her job; the admin sees it
    r = jobs_env.create("bob", mount_id=mount, paths=["/hello.txt"], target="local")
    assert r.status_code == 404 and r.json()["error"]["code"] == "mount_not_found"
    job = jobs_env.run(mount_id=mount, paths=["/hello.txt"], target="local", destination="own")
    with jobs_env.client("bob") as c:
        assert c.get(f"{API}/restore/jobs/{job['job_id']}").status_code == 404
        assert job["job_id"] not in {
            j["job_id"] for j in c.get(f"{API}/restore/jobs").json()["jobs"]
        }
        assert c.post(f"{API}/restore/jobs/{job['job_id']}/cancel").status_code == 404
    with jobs_env.client("admin") as c:
        assert c.get(f"{API}/restore/jobs/{job['job_id']}").json()["owner"] == job["owner"]


def test_unknown_target_and_bad_requests(jobs_env: JobsEnv) -> None:
    mount = jobs_env.mount()
    r = jobs_env.create(mount_id=mount, paths=["/hello.txt"], target="nowhere")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "target_not_found")
    r = jobs_env.create(mount_id=mount, paths=["/hello.txt"], target="local", policy="merge")
    assert r.status_code == 400
    r = jobs_env.create(mount_id=mount, paths=[], target="local")
    assert r.status_code == 400


def test_the_escape_through_the_destination_is_refused_by_name(
    jobs_env: JobsEnv, tmp_path: Path
) -> None:
    mount = jobs_env.mount()
    for destination in ("../outside", "a/../../outside", "/etc"):
        r = jobs_env.create(
            mount_id=mount, paths=["/hello.txt"], target="local", destination=destination
        )
        assert (r.status_code, r.json()["error"]["code"]) == (400, "destination_escape"), (
            destination
        )
    outside = tmp_path / "outside"
    outside.mkdir()
    (jobs_env.local_root / "planted-root").symlink_to(outside)
    r = jobs_env.create(
        mount_id=mount, paths=["/hello.txt"], target="local", destination="planted-root/x"
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "destination_escape")
    # a link planted inside the destination where a restored directory goes is an existing
    # entry like any other: skipped, or replaced (the link itself); never followed
    planted = jobs_env.local_root / "planted"
    planted.mkdir()
    (planted / "docs").symlink_to(outside)
    job = jobs_env.run(mount_id=mount, paths=["/docs"], target="local", destination="planted")
    assert job["status"] == "completed"
    assert (job["progress"]["skipped"], job["progress"]["files_done"]) == (
        8,
        0,
    )  # docs and all below
    assert (planted / "docs").is_symlink()
    job = jobs_env.run(
        mount_id=mount, paths=["/docs"], target="local", destination="planted", policy="overwrite"
    )
    assert job["status"] == "completed"
    assert not (planted / "docs").is_symlink() and (planted / "docs" / "readme.md").is_file()
    assert list(outside.iterdir()) == []
