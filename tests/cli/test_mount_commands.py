"""``filerestore mount`` and ``umount`` as a user runs them, on the real /dev/fuse."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.runner import fails, run
from tests.fuse.mounting import FSTYPE, mounted, mounts_at
from tests.imagebuild import gpt_ext4 as images

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def mnt(tmp_path: Path) -> Iterator[Path]:
    """An empty directory; whatever a test leaves mounted on it is taken away."""
    target = tmp_path / "mnt"
    target.mkdir()
    yield target
    if mounts_at(target):
        subprocess.run(["fusermount3", "-u", "-z", target], check=False)


def wait_unmounted(path: Path) -> None:
    """Poll until nothing is mounted at ``path``; a mount left behind by a process that is gone
    (a dead endpoint) fails at once. No deadline of its own: a hang ends at the pytest-timeout
    limit."""
    while mounts_at(path):
        try:
            os.stat(path)
        except OSError as e:
            if e.errno == errno.ENOTCONN:
                raise AssertionError(f"{path}: mount process gone, mount left behind") from e
        time.sleep(0.05)


def test_background_returns_once_mounted_and_umount_releases(ext4: images.Built, mnt: Path) -> None:
    proc = run("mount", "--background", ext4.image, mnt)
    assert proc.returncode == 0, proc.stderr
    assert f"filerestore umount {mnt}".encode() in proc.stdout
    # ready means ready: the first look already sees the tree
    assert FSTYPE in mounts_at(mnt)
    assert (mnt / "hello.txt").read_bytes() == (ext4.tree() / "hello.txt").read_bytes()
    done = run("umount", mnt)
    assert (done.returncode, done.stderr) == (0, b"")
    wait_unmounted(mnt)
    assert os.listdir(mnt) == []  # an empty directory again, not a dead endpoint


def test_volume_option_chooses_the_filesystem(tmp_path: Path) -> None:
    two = images.two_ext4()
    with mounted(two.image, "--volume", "p3") as mnt:
        assert sorted(os.listdir(mnt)) == sorted(["lost+found", *os.listdir(two.tree(2))])
        label = subprocess.run(["stat", "-f", "-c", "%T", mnt], capture_output=True, text=True)
        assert label.stdout.strip().startswith("fuse")


def test_two_filesystems_without_volume_is_a_usage_error(mnt: Path) -> None:
    line = fails(2, "mount", images.two_ext4().image, mnt)
    assert "p1" in line and "p3" in line
    assert mounts_at(mnt) == []


def test_mount_point_must_be_an_empty_directory(ext4: images.Built, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "something").write_bytes(b"")
    assert "not empty" in fails(2, "mount", ext4.image, full)
    assert "not a directory" in fails(2, "mount", ext4.image, full / "something")
    assert "not a directory" in fails(2, "mount", ext4.image, tmp_path / "missing")


def test_missing_and_bad_images(tmp_path: Path, mnt: Path) -> None:
    fails(3, "mount", tmp_path / "no-such.qcow2", mnt)
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(1 << 20))
    fails(4, "mount", junk, mnt)
    # in the background the error comes back from the child, the same line and code
    fails(4, "mount", "--background", junk, mnt)
    assert mounts_at(mnt) == []


def test_no_fuse_device(ext4: images.Built, mnt: Path) -> None:
    # a private mount namespace whose /dev is an empty tmpfs: no /dev/fuse there
    script = 'mount -t tmpfs none /dev && exec "$@"'
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *_cli(), "mount", ext4.image, mnt],
        capture_output=True,
        check=False,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 6, err  # unavailable: the host lacks FUSE
    assert err.startswith("filerestore: error: /dev/fuse does not exist") and err.count("\n") == 1


def _cli() -> list[str]:
    from tests.cli.runner import SCRIPT

    return [os.fspath(SCRIPT)]


@pytest.mark.root  # mounts a tmpfs
def test_umount_refuses_what_it_did_not_mount(tmp_path: Path, mnt: Path) -> None:
    assert "nothing is mounted" in fails(2, "umount", mnt)
    subprocess.run(["mount", "-t", "tmpfs", "none", mnt], check=True)
    try:
        assert "not a filerestore mount" in fails(2, "umount", mnt)
    finally:
        subprocess.run(["umount", mnt], check=True)
