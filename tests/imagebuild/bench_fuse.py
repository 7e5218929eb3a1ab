"""Builds (once, cached) the image bench/fuse.py mounts, with the real tools.

One ext4 filesystem, made by ``mke2fs -d`` from a source tree holding ``big.bin`` (random
bytes, 512 MiB by default) and ``tree/`` (100 directories of 1,000 empty files each, so
100,100 entries below it). The same filesystem is kept twice: ``ext4.img`` (raw, for the
kernel's loop mount, the peer of ``find``) and ``disk.qcow2`` (uncompressed qcow2 of the
same bytes: a filesystem on the whole disk, volume ``disk``, for ``filerestore``).

Checked after it is built by the kernel (a read-only loop mount): the entry count of
``tree/`` and the sha256 of ``big.bin``, both against the source tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.imagebuild.bench_tools import build_once, random_file, run
from tests.imagebuild.dir_paths import InDir, read_json

MiB = 1 << 20
VERSION = 1


@dataclass(frozen=True)
class Scale:
    name: str
    big_mib: int
    dirs: int
    files_per_dir: int

    @property
    def entries(self) -> int:
        """Entries below ``tree/`` (the directories and their files)."""
        return self.dirs * (self.files_per_dir + 1)


FULL = Scale("full", 512, 100, 1000)
TINY = Scale("tiny", 8, 10, 100)


@dataclass(frozen=True)
class FuseBenchImage:
    root: Path
    scale: Scale
    raw = InDir("ext4.img")
    qcow2 = InDir("disk.qcow2")

    @property
    def big_sha256(self) -> str:
        manifest: dict[str, str] = read_json(self.root / "manifest.json")
        return manifest["big_sha256"]


def build(scale: Scale) -> FuseBenchImage:
    root = build_once(
        f"fuse-{scale.name}", [VERSION], Path(__file__), lambda tmp: _build(tmp, scale)
    )
    return FuseBenchImage(root, scale)


def _build(root: Path, scale: Scale) -> None:
    src = root / "source"
    (src / "tree").mkdir(parents=True)
    big_sha256 = random_file(src / "big.bin", scale.big_mib)
    for d in range(scale.dirs):
        sub = src / "tree" / f"d{d:03d}"
        sub.mkdir()
        for f in range(scale.files_per_dir):
            (sub / f"f{f:04d}").touch()
    inodes = scale.entries + 1000
    size_mib = scale.big_mib + 64 + inodes * 256 // MiB * 2
    raw = root / "ext4.img"
    run("truncate", "-s", f"{size_mib}M", raw)
    run("mke2fs", "-q", "-F", "-t", "ext4", "-N", str(inodes), "-d", src, raw)
    with _loop_mount(raw) as mnt:
        count = sum(len(dirs) + len(files) for _, dirs, files in os.walk(mnt / "tree"))
        if count != scale.entries:
            raise RuntimeError(f"the kernel lists {count} entries in tree/, not {scale.entries}")
        if _sha256(mnt / "big.bin") != big_sha256:
            raise RuntimeError("the kernel reads big.bin differently from its source")
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, root / "disk.qcow2")
    shutil.rmtree(src)
    (root / "manifest.json").write_text(json.dumps({"big_sha256": big_sha256}))


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@contextlib.contextmanager
def loop_mounted(image: Path) -> Iterator[Path]:
    """``image`` mounted read-only by the kernel through a loop device."""
    with _loop_mount(image) as mnt:
        yield mnt


@contextlib.contextmanager
def _loop_mount(image: Path) -> Iterator[Path]:
    mnt = Path(tempfile.mkdtemp(prefix="fr-bench-mnt-"))
    try:
        run("mount", "-o", "ro,loop,noload", image, mnt)
        try:
            yield mnt
        finally:
            run("umount", mnt)
    finally:
        mnt.rmdir()
