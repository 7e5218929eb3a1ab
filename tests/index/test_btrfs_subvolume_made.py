"""A Btrfs incremental in which a subvolume was made (and a file written in another one): the
two states do not hold the same subvolumes, so the changed-block pass gives way to the
walk, and the backup holds what the kernel mount saw (its paths and sizes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.imagebuild.fs_linux import loop_mount, run
from tests.imagebuild.index_chain import facts_of, overlay
from tests.index.conftest import Chain, indexed_repository, methods_of
from tests.index.test_chain import everything


def test_a_subvolume_made_between_backups_is_walked(tmp_path: Path) -> None:
    pytest.importorskip("dissect.btrfs", reason="the [btrfs] extra is not installed")
    base, new = tmp_path / "base.raw", tmp_path / "new.raw"
    run("truncate", "-s", "256M", base)
    run("mkfs.btrfs", "-q", base)
    with loop_mount(base, "rw,noatime") as mnt:
        run("btrfs", "subvolume", "create", mnt / "home")
        (mnt / "home" / "a.txt").write_bytes(b"a\n")
        (mnt / "top.txt").write_bytes(b"top\n")
    shutil.copyfile(base, new)
    with loop_mount(new, "rw,noatime") as mnt:
        run("btrfs", "subvolume", "create", mnt / "extra")
        (mnt / "extra" / "made.txt").write_bytes(b"made with its subvolume\n")
        (mnt / "home" / "a.txt").write_bytes(b"a, longer now\n")
    with loop_mount(new, "ro,noatime") as mnt:
        seen = facts_of(mnt)
    repo = tmp_path / "repo"
    repo.mkdir()
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", base, repo / "base.qcow2")
    overlay(repo / "incr.qcow2", "base.qcow2", base, new)
    with indexed_repository(tmp_path / "state", repo, ("base", "incr")) as (db, settings, ids):
        assert [methods_of(db)[i] for i in ids] == ["full", "walk-diff"]
        state = everything(Chain("btrfs", repo, repo, db, settings, ids), ids[1])
        assert set(state) == set(seen)
        for path, fact in seen.items():
            if fact["kind"] == "file":
                assert state[path].size == fact["size"], path
