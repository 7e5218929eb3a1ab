"""The image the browsing and archive tests read, and the source tree they compare against.

One ext4 image from the standard tree (with the 5 GiB sparse file and a 10,000-entry
directory) plus names and modes that archives must handle with care: backslashes, leading
dashes, a newline, setuid/setgid/sticky bits, a FIFO, and a name that collides with the ZIP
escape of the non-UTF-8 one. Built by ``mke2fs -d`` and verified against the tree through a
kernel loop mount (tests/imagebuild/fs_linux.py) before it is cached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.imagebuild import fs_linux
from tests.imagebuild.cache import cached
from tests.imagebuild.tree import EXT4, Features, make_tree

FEATURES = Features(**{**EXT4.recipe(), "many": 10_000})  # type: ignore[arg-type]
MTIME = 1_500_000_000

HOSTILE_FILES = (
    "back\\slash.txt",
    "..\\..\\evil.txt",
    "-rf",
    "--help",
    " leading space",
    "trailing space ",
    "new\nline.txt",
)


def _hostile(dest: Path) -> None:
    d = dest / "hostile"
    d.mkdir()
    for name in HOSTILE_FILES:
        (d / name).write_bytes(f"content of {name!r}\n".encode())
    (d / "setuid.bin").write_bytes(b"#!/bin/sh\n")
    (d / "setuid.bin").chmod(0o4755)
    (d / "setgid-dir").mkdir()
    (d / "setgid-dir").chmod(0o2775)
    (d / "sticky-dir").mkdir()
    (d / "sticky-dir" / "inside.txt").write_bytes(b"inside a sticky directory\n")
    (d / "sticky-dir").chmod(0o1777)
    os.mkfifo(d / "fifo")
    # the ZIP escape of the non-UTF-8 name "latin1-caf\xe9.txt"
    (dest / "unicode" / "latin1-caf%E9.txt").write_bytes(b"a real percent sign\n")
    for path in (d, *d.iterdir()):
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)


def restore_tree() -> Path:
    def build(tmp: Path) -> None:
        make_tree(tmp, FEATURES)
        _hostile(tmp)

    return cached("tree-restore", {"features": FEATURES.recipe(), "extras": 1}, build, "d")


def restore_image() -> Path:
    tree = restore_tree()

    def build(tmp: Path) -> None:
        fs_linux.run("truncate", "-s", "96M", tmp)
        fs_linux.run("mke2fs", "-q", "-F", "-t", "ext4", "-L", "fr-restore", "-d", tree, tmp)
        fs_linux.run("e2fsck", "-fn", tmp)
        with fs_linux.loop_mount(tmp, "ro,noload") as mnt:
            fs_linux.verify_mount(mnt, tree, time_resolution_ns=10**9)

    return cached("ext4-restore", {"tree": tree.name, "size": 96}, build)


@dataclass(frozen=True)
class Source:
    """The source tree and the image built from it."""

    tree: Path
    image: Path

    def path(self, guest_path: str) -> Path:
        return self.tree / guest_path.lstrip("/")

    def entries(self, guest_path: str = "/") -> dict[str, os.stat_result]:
        """Every path below ``guest_path`` (relative, "/"-separated) with its lstat."""
        top = self.path(guest_path)
        out: dict[str, os.stat_result] = {}
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                full = Path(dirpath) / name
                out[str(full.relative_to(top))] = full.lstat()
        return out
