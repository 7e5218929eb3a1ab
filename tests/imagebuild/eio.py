"""A repository on storage that fails reads with EIO, made with a real loop device.

``failing_repository(workdir, files)`` mounts a small ext4 filesystem through a loop device,
writes ``files`` (name -> bytes) into its ``repo/`` directory and yields a
:class:`FailingRepository`. Until ``fail()`` is called everything reads normally; ``fail()``
cuts the loop device's backing file just before the first data block of the files, tells
the loop device its new size (``losetup -c``) and drops the files' cached pages, so the
directory walk still works (its blocks lie before the cut) and every read of file data
fails with EIO from the kernel, as a dying disk or a broken share would. Needs root.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.imagebuild.commands import loop_device, run


def _first_block(image: Path, name: str) -> int:
    """The lowest physical block of ``name``'s data, from debugfs (independent of us)."""
    out = run("debugfs", "-R", f"stat {name}", image)
    extents = re.findall(r"\(\d+(?:-\d+)?\):(\d+)", out)
    if not extents:
        raise RuntimeError(f"debugfs shows no data blocks for {name}: {out}")
    return min(int(e) for e in extents)


def _metadata_end(image: Path, name: str) -> int:
    """One past the last block of the directory holding ``name`` (it must stay readable)."""
    out = run("debugfs", "-R", f"stat {name}", image)
    extents = re.findall(r"\(\d+(?:-\d+)?\):(\d+)(?:-(\d+))?", out)
    return max(int(b or a) for a, b in extents) + 1


@dataclass
class FailingRepository:
    root: Path
    backing: Path
    device: str
    files: list[str]
    block_size: int = 4096

    def fail(self) -> None:
        # unmount-free: the directory and inodes stay cached and readable below the cut
        first = min(_first_block(self.backing, f"/repo/{n}") for n in self.files)
        if _metadata_end(self.backing, "/repo") > first:
            raise RuntimeError("the repository directory lies after its files: cannot cut")
        os.truncate(self.backing, first * self.block_size)
        run("losetup", "-c", self.device)
        for name in self.files:
            fd = os.open(self.root / name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


@contextmanager
def failing_repository(workdir: Path, files: dict[str, bytes]) -> Iterator[FailingRepository]:
    backing = workdir / "eio-fs.img"
    mnt = workdir / "eio-mnt"
    mnt.mkdir()
    run("truncate", "-s", "64M", backing)
    # no journal: nothing is written after the files, and debugfs reads a settled image
    run("mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-b", "4096", backing)
    with loop_device(backing) as device:
        run("mount", device, mnt)
        try:
            root = mnt / "repo"
            root.mkdir()
            for name, data in files.items():
                (root / name).write_bytes(data)
            os.sync()
            yield FailingRepository(root, backing, device, list(files))
        finally:
            run("umount", "-l", mnt)
