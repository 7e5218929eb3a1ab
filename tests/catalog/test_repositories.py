"""Repositories: add and list; shares must be mounted (a tmpfs mount stands in for NFS)."""

import contextlib
import subprocess
from pathlib import Path

import pytest

from filerestore.catalog import (
    add_repository,
    check_availability,
    list_repositories,
    sync_configured,
)
from filerestore.catalog.mountinfo import mount_at, parse_mountinfo, read_mountinfo
from filerestore.errors import (
    InvalidRepositoryError,
    RepositoryExistsError,
    RepositoryUnavailableError,
)
from filerestore.settings import RepositoryConfig


@contextlib.contextmanager
def tmpfs_at(path: Path):
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "frtest-share", str(path)], capture_output=True
    )
    if result.returncode != 0:
        pytest.fail(f"cannot mount tmpfs (tests run as root): {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_add_and_list(db, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    add_repository(db, "beta", tmp_path / "b")
    added = add_repository(db, "alpha", tmp_path / "a", kind="local")
    assert added.root_path == str(tmp_path / "a")
    assert [(r.name, r.kind, r.enabled) for r in list_repositories(db)] == [
        ("alpha", "local", True),
        ("beta", "local", True),
    ]


def test_bad_input(db, tmp_path):
    (tmp_path / "r").mkdir()
    add_repository(db, "r", tmp_path / "r")
    with pytest.raises(RepositoryExistsError, match="already exists"):
        add_repository(db, "r", tmp_path / "r")
    with pytest.raises(InvalidRepositoryError, match="unknown repository kind"):
        add_repository(db, "x", tmp_path / "r", kind="ftp")
    with pytest.raises(InvalidRepositoryError, match="not a directory"):
        add_repository(db, "y", tmp_path / "missing")
    with pytest.raises(RepositoryUnavailableError, match="not mounted"):
        add_repository(db, "z", tmp_path / "r", kind="nfs")
    assert [r.name for r in list_repositories(db)] == ["r"]  # nothing half-added


def test_settings_file_repositories_are_added_once(db, tmp_path):
    (tmp_path / "a").mkdir()
    configured = [RepositoryConfig(name="from-file", path=tmp_path / "a")]
    assert sync_configured(db, configured) == ["from-file"]
    assert sync_configured(db, configured) == []
    assert [(r.name, r.root_path) for r in list_repositories(db)] == [
        ("from-file", str(tmp_path / "a"))
    ]


def test_mountinfo_parsing():
    line = (
        "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - nfs4 "
        "srv:/export/b\\040x rw,vers=4.2"
    )
    (entry,) = parse_mountinfo(line + "\ngarbage line\n")
    assert (entry.mount_point, entry.fstype, entry.source) == (
        "/mnt/with space",
        "nfs4",
        "srv:/export/b x",
    )


@pytest.mark.root  # mounts a tmpfs
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_share_must_be_mounted_as_its_type(db, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    # not mounted: the empty directory is not read as an empty repository
    assert not check_availability("nfs", share).available
    assert "not mounted" in (check_availability("cifs", share).reason or "")
    with tmpfs_at(share):
        # /proc/self/mountinfo, read independently of our parser, lists the tmpfs there
        findmnt = subprocess.run(
            ["findmnt", "-n", "-o", "FSTYPE,SOURCE", str(share)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert findmnt == ["tmpfs", "frtest-share"]
        entry = mount_at(share, read_mountinfo())
        assert entry is not None
        assert (entry.fstype, entry.source) == ("tmpfs", "frtest-share")
        wrong = check_availability("nfs", share)
        assert not wrong.available and "mounted as tmpfs, not nfs" in (wrong.reason or "")
        # tmpfs as the stand-in for the share's filesystem type
        assert check_availability("nfs", share, fstypes={"tmpfs"}).available
        assert check_availability("local", share).available
    assert not check_availability("nfs", share, fstypes={"tmpfs"}).available
