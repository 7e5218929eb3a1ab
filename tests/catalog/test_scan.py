"""Scanning and registering backups; kinds, parents and sizes checked against qemu-img."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from filerestore.catalog import (
    add_repository,
    get_backup,
    list_backups,
    locate_backup,
    register_backup,
    scan_repository,
)
from filerestore.catalog.scan import scan_all
from filerestore.db.models import Backup
from filerestore.errors import (
    BackingChainLoopError,
    BackingFileRefusedError,
    BackupFileMissingError,
    BackupNotFoundError,
    RepositoryNotFoundError,
    UsageError,
)
from tests.imagebuild.catalog_repo import full_backup, incremental, make_repository, qemu_info
from tests.imagebuild.sparse import copy_sparse


@pytest.fixture
def repo(db, tmp_path):
    root = tmp_path / "repo"
    images = make_repository(root)
    add_repository(db, "main", root)
    return root, images


def by_path(db):
    return {b.path: b for b in list_backups(db)}


def test_scan_registers_every_qcow2_with_kind_and_parent(db, repo):
    root, images = repo
    report = scan_repository(db, "main")
    assert sorted(report.added) == sorted(p.relative_to(root).as_posix() for p in images.values())
    assert report.errors == []
    found = by_path(db)
    assert "notes.txt" not in found
    for path, backup in found.items():
        info = qemu_info(root / path)
        assert backup.virtual_size == info["virtual-size"]
        assert backup.kind == ("incremental" if "backing-filename" in info else "full")
        if "backing-filename" in info:
            parent_path = (root / path).parent / info["backing-filename"]
            assert found[parent_path.relative_to(root).as_posix()].id == backup.parent_backup_id
        else:
            assert backup.parent_backup_id is None
        assert backup.status == "available"
    inc2 = found["vm1/disk0-inc2.qcow2"]
    # a chain is one disk, named by its full backup (qemu-img's last link of the chain)
    base = qemu_chain(root / "vm1/disk0-inc2.qcow2")[-1]["filename"]
    assert (inc2.vm_name, inc2.disk_name) == ("vm1", Path(base).stem) == ("vm1", "disk0-full")


def qemu_chain(path):
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--backing-chain", "--output=json", path],
        capture_output=True,
        text=True,
        check=True,
        cwd=path.parent,
    ).stdout
    return json.loads(out)


def test_a_chain_is_one_disk_whatever_its_files_are_called(db, tmp_path):
    """Incrementals named by date in a directory of their own, a second disk of the same VM
    with its own chain, and a VM at the repository root."""
    root = tmp_path / "repo"
    full0 = full_backup(root / "web01" / "sda.qcow2")
    day1 = root / "web01" / "incr" / "2026-11-01.qcow2"
    day1.parent.mkdir(parents=True)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "../sda.qcow2", "-F", "qcow2", day1],
        check=True,
        cwd=day1.parent,
    )
    day2 = incremental(root / "web01" / "incr" / "2026-11-02.qcow2", day1)
    full1 = full_backup(root / "web01" / "sdb-full.qcow2")
    sdb1 = incremental(root / "web01" / "sdb-incr1.qcow2", full1)
    alone = full_backup(root / "standalone.qcow2")
    add_repository(db, "main", root)
    assert scan_repository(db, "main").errors == []
    found = by_path(db)
    for image in (full0, day1, day2, full1, sdb1, alone):
        rel = image.relative_to(root)
        chain = qemu_chain(image)  # qemu-img's own walk of the backing chain
        base = Path(os.path.normpath(image.parent / chain[-1]["filename"]))
        vm = base.relative_to(root).parent.name or None
        backup = found[rel.as_posix()]
        assert (backup.vm_name, backup.disk_name) == (vm, base.stem), rel
    disks = {(b.vm_name, b.disk_name) for b in found.values()}
    assert disks == {("web01", "sda"), ("web01", "sdb-full"), (None, "standalone")}


def test_rescan_regroups_what_an_older_rule_named_by_file_but_keeps_given_names(db, repo):
    scan_repository(db, "main")
    with db.write() as s:  # as the file-name rule of older releases registered them
        for b in s.scalars(select(Backup)):
            b.disk_name = Path(b.path).stem
        given = s.scalar(select(Backup).where(Backup.path == "vm1/disk0-inc2.qcow2"))
        given.disk_name = "given by the operator"
    scan_repository(db, "main")
    found = by_path(db)
    assert found["vm1/disk0-inc1.qcow2"].disk_name == "disk0-full"
    assert found["vm1/disk0-inc2.qcow2"].disk_name == "given by the operator"


def test_scan_is_idempotent(db, repo):
    scan_repository(db, "main")
    first = {b.path: b.id for b in list_backups(db)}
    again = scan_repository(db, "main")
    assert again.added == [] and sorted(again.updated) == sorted(first)
    assert {b.path: b.id for b in list_backups(db)} == first
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Backup)) == len(first)


def test_hostile_chains_are_reported_not_registered(db, repo, tmp_path):
    root, _ = repo
    import subprocess

    outside = tmp_path / "outside.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", outside, "8M"], check=True)
    bad = root / "bad"
    bad.mkdir()
    common = ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "qcow2"]
    subprocess.run([*common, "-b", "../../outside.qcow2", bad / "escape.qcow2", "8M"], check=True)
    subprocess.run([*common, "-b", "loop-b.qcow2", bad / "loop-a.qcow2", "8M"], check=True)
    subprocess.run([*common, "-b", "loop-a.qcow2", bad / "loop-b.qcow2", "8M"], check=True)
    report = scan_repository(db, "main")
    errors = dict(report.errors)
    assert set(errors) == {"bad/escape.qcow2", "bad/loop-a.qcow2", "bad/loop-b.qcow2"}
    assert "outside" in errors["bad/escape.qcow2"] or "repository" in errors["bad/escape.qcow2"]
    assert not any(p.startswith("bad/") for p in by_path(db))
    assert len(report.added) == 4
    with pytest.raises(BackingFileRefusedError):
        register_backup(db, "main", "bad/escape.qcow2")
    with pytest.raises(BackingChainLoopError):
        register_backup(db, "main", bad / "loop-a.qcow2")


def test_missing_file_is_reported_missing(db, repo):
    _, images = repo
    scan_repository(db, "main")
    images["other"].unlink()
    gone = by_path(db)["vm2/disk0.qcow2"]
    assert gone.status == "missing"
    assert get_backup(db, gone.id).status == "missing"
    with pytest.raises(BackupFileMissingError, match="missing"):
        locate_backup(db, gone.id)
    # a rescan neither crashes nor forgets it
    scan_repository(db, "main")
    assert by_path(db)["vm2/disk0.qcow2"].status == "missing"


def test_register_single_backup(db, repo):
    _, images = repo
    full = register_backup(db, "main", images["full"], vm_name="web-01", disk_name="sda")
    assert (full.kind, full.vm_name, full.disk_name, full.parent_backup_id) == (
        "full",
        "web-01",
        "sda",
        None,
    )
    inc = register_backup(db, "main", "vm1/disk0-inc1.qcow2")
    assert (inc.kind, inc.parent_backup_id) == ("incremental", full.id)
    # registering again updates, never duplicates; a later scan keeps the given names
    assert register_backup(db, "main", "vm1/disk0-full.qcow2").id == full.id
    scan_repository(db, "main")
    again = get_backup(db, full.id)
    assert (again.vm_name, again.disk_name) == ("web-01", "sda")


def test_bad_input(db, repo, tmp_path):
    with pytest.raises(BackupNotFoundError, match="no backup with id 999"):
        get_backup(db, 999)
    with pytest.raises(RepositoryNotFoundError):
        scan_repository(db, "nope")
    with pytest.raises(UsageError, match="outside the repository"):
        register_backup(db, "main", tmp_path / "elsewhere.qcow2")
    assert list_backups(db) == []


def test_scan_all_reports_an_unavailable_repository(db, repo, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    from filerestore.db.models import Repository

    with db.write() as s:  # a share recorded earlier, now not mounted
        s.add(Repository(name="gone", kind="nfs", root_path=str(share), enabled=True))
    reports = {r.repository: r for r in scan_all(db)}
    assert len(reports["main"].added) == 4
    assert "not mounted" in reports["gone"].errors[0][1]


def test_scan_skips_files_that_are_not_images_silently(db, repo, tmp_path):
    """Not every file is a backup: README, empty leftovers, a FIFO, a link out of the
    repository are skipped without an error; a raw disk is registered only by its name."""
    import os

    from tests.imagebuild.hostile import DATA_PATTERN

    root, images = repo
    (root / "README").write_text("backups of vm1 and vm2\n")
    (root / "vm1" / "disk0-inc3.qcow2").write_bytes(b"")  # a failed backup's leftover
    (root / "empty.raw").write_bytes(b"")
    (root / "garbage.bin").write_bytes(DATA_PATTERN)
    (root / "disk1.raw").write_bytes(DATA_PATTERN * 16)  # a raw disk, by its name
    os.mkfifo(root / "pipe.raw")  # would block a plain open for reading
    (tmp_path / "outside.raw").write_bytes(DATA_PATTERN * 16)
    (root / "out.raw").symlink_to(tmp_path / "outside.raw")
    report = scan_repository(db, "main")
    assert report.errors == []
    expected = {p.relative_to(root).as_posix() for p in images.values()} | {"disk1.raw"}
    assert set(report.added) == expected
    raw = by_path(db)["disk1.raw"]
    assert (raw.kind, raw.virtual_size) == ("full", len(DATA_PATTERN) * 16)


def test_status_and_locate_follow_the_stores_rules(db, repo, tmp_path):
    """A backup whose file is replaced by a link out of the repository is 'refused' and
    cannot be located (RepositoryEscapeError), never served from outside."""

    from filerestore.errors import RepositoryEscapeError

    _, images = repo
    scan_repository(db, "main")
    other = by_path(db)["vm2/disk0.qcow2"]
    copy_sparse(images["other"], tmp_path / "outside.qcow2")
    images["other"].unlink()
    images["other"].symlink_to(tmp_path / "outside.qcow2")
    assert get_backup(db, other.id).status == "refused"
    assert by_path(db)["vm2/disk0.qcow2"].status == "refused"
    with pytest.raises(RepositoryEscapeError, match="outside the repository") as info:
        locate_backup(db, other.id)
    assert str(tmp_path) not in str(info.value)
    # a link that stays inside is fine
    images["other"].unlink()
    images["other"].symlink_to("../vm1/disk0-full.qcow2")
    assert locate_backup(db, other.id).status == "available"
