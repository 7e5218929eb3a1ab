"""Seed images for the fuzz harnesses: small (a few MiB), made by the real tools, cached.

Every image here is built once by the same machinery as the test images
(:func:`tests.imagebuild.cache.cached`, keyed by recipe and by this module's source) into
``FILERESTORE_TEST_CACHE``; nothing is committed. The images are small on purpose: a
harness overlays its mutations on one of them (:mod:`fuzz.patches`), and a small tree keeps
every execution short. The partition-table and LVM seeds are the test suite's own disks
(:mod:`tests.imagebuild.disk`, :mod:`tests.imagebuild.lvm_disks`).

Tools: ``mke2fs -d`` (ext2/3/4), ``mkfs.xfs`` + ``cp -a`` through a loop mount, ``mkfs.btrfs``
+ ``cp -a`` under ``compress=`` mount options, ``mkntfs`` + ``ntfs-3g``, ``mkfs.vfat`` +
``mcopy``, ``mkfs.exfat`` + ``exfat-fuse``, ``qemu-img`` + ``qemu-io``. Building needs root
(loop devices and FUSE), as the test images do.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.imagebuild import commands
from tests.imagebuild.cache import cached
from tests.imagebuild.commands import loop_device
from tests.imagebuild.sparse import copy_sparse
from tests.imagebuild.tree import MiB, block_content

KiB = 1024
TREE_MTIME = 1_600_000_000


def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> str:
    return commands.run(*args, env={**commands.UTC_C, **(env or {})})


# --- the small source tree ----------------------------------------------------------------


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.write_bytes(data)
    path.chmod(mode)
    os.utime(path, (TREE_MTIME, TREE_MTIME))


def make_small_tree(dest: Path, posix: bool = True) -> None:
    """A tree with one of each kind of thing the readers handle, in about 200 KiB.

    ``posix``: symlinks, a hard link, a non-UTF-8 name, modes and a sparse file (not for
    FAT and exFAT, which hold none of them).
    """
    dest.mkdir()
    _write(dest / "hello.txt", b"hello, world\n")
    _write(dest / "empty", b"")
    docs = dest / "docs"
    docs.mkdir()
    _write(docs / "readme.md", b"# readme\n" * 100)
    _write(docs / "data.bin", block_content("fuzz-data.bin", 40 * KiB + 123))
    (docs / "sub" / "deeper").mkdir(parents=True)
    _write(docs / "sub" / "deeper" / "nested.txt", b"nested\n")
    (dest / "unicode").mkdir()
    for name in ("café.txt", "日本語.txt"):
        _write(dest / "unicode" / name, name.encode() + b"\n")
    _write(dest / ("L" * 120 + ".txt"), b"long name\n")
    many = dest / "many"
    many.mkdir()
    for i in range(40):
        _write(many / f"entry-{i:03d}-{'x' * 12}.txt", b"%d\n" % i)
    if posix:
        _write(docs / "script.sh", b"#!/bin/sh\necho hi\n", 0o755)
        _write(dest / "unicode" / os.fsdecode(b"latin1-caf\xe9.txt"), b"latin-1\n")
        with (dest / "sparse.bin").open("wb") as fh:
            fh.write(block_content("fuzz-sparse-head", 16 * KiB))
            fh.seek(256 * KiB)
            fh.write(block_content("fuzz-sparse-tail", 4 * KiB))
        os.utime(dest / "sparse.bin", (TREE_MTIME, TREE_MTIME))
        os.link(dest / "hello.txt", docs / "hello-hardlink.txt")
        (dest / "link-relative").symlink_to("docs/readme.md")
        (dest / "link-absolute").symlink_to("/docs/sub/deeper/nested.txt")
        (dest / "link-long").symlink_to("d/" * 40 + "long-target")  # not a fast symlink
        (dest / "loop-a").symlink_to("loop-b")
        (dest / "loop-b").symlink_to("loop-a")
        (dest / "link-to-dir").symlink_to("docs")


def small_tree(posix: bool = True) -> Path:
    return cached("fuzz-tree", {"posix": posix}, lambda d: make_small_tree(d, posix), suffix="tree")


def compressible(size: int) -> bytes:
    line = b"the quick brown fox jumps over the lazy dog %08d\n"
    return b"".join(line % i for i in range(size // len(line % 0) + 1))[:size]


# --- mounts -------------------------------------------------------------------------------


@contextlib.contextmanager
def mounted(argv: list[str]) -> Iterator[Path]:
    """``argv`` + a fresh mount point (``mount -o ... DEV`` or a FUSE driver), unmounted after."""
    mnt = Path(tempfile.mkdtemp(prefix="fr-fuzz-mnt-"))
    try:
        with commands.mounted(argv, mnt, env=commands.UTC_C):
            yield mnt
    finally:
        mnt.rmdir()


def _blank(path: Path, size: int) -> None:
    path.touch()
    os.truncate(path, size)


# --- filesystems --------------------------------------------------------------------------

# (name, mke2fs arguments, size): 1 KiB and 4 KiB blocks, block maps and extents, inline
# data, meta_bg with 64-bit descriptors
EXT_SEEDS: dict[str, tuple[tuple[str, ...], int]] = {
    "ext2": (("-t", "ext2", "-b", "1024", "-I", "128"), 1 * MiB),
    "ext3": (("-t", "ext3", "-b", "1024", "-I", "128"), 3 * MiB),
    "ext4": (("-t", "ext4", "-b", "1024", "-I", "256"), 3 * MiB),
    "ext4-inline": (("-t", "ext4", "-I", "256", "-O", "inline_data,^has_journal"), 2 * MiB),
    "ext4-meta_bg": (
        ("-t", "ext4", "-b", "4096", "-I", "256", "-O", "64bit,meta_bg,^resize_inode"),
        4 * MiB,
    ),
}


def ext_seed(name: str) -> Path:
    args, size = EXT_SEEDS[name]
    tree = small_tree()

    def build(out: Path) -> None:
        _blank(out, size)
        run("mke2fs", "-q", "-F", *args, "-L", f"fz-{name}", "-d", tree, out)
        run("e2fsck", "-fn", out)

    return cached(f"fuzz-seed-{name}", {"args": args, "size": size, "tree": tree.name}, build)


# mkfs.xfs refuses filesystems under 300 MB unless it runs under the xfstests variables
_XFS_SMALL = {"TEST_DIR": "1", "TEST_DEV": "1", "QA_CHECK_FS": "1"}
# (v4 filesystems: this kernel does not mount them to populate one)
XFS_SEEDS = {"xfs-v5": (), "xfs-v5-1k": ("-b", "size=1024")}


def xfs_seed(name: str) -> Path:
    args = XFS_SEEDS[name]
    tree = small_tree()

    def build(out: Path) -> None:
        _blank(out, 16 * MiB)
        run("mkfs.xfs", "-q", *args, "-L", "fz-xfs", out, env=_XFS_SMALL)
        with loop_device(out) as dev, mounted(["mount", "-o", "rw", dev]) as mnt:
            run("cp", "-a", f"{tree}/.", mnt)
        run("xfs_repair", "-n", "-f", "-o", "force_geometry", out)

    return cached(f"fuzz-seed-{name}", {"args": args, "tree": tree.name}, build)


# mixed block groups make a 16 MiB filesystem; the ordinary layout needs 114 MB (sparse)
BTRFS_SEEDS = {"btrfs-mixed": (("-M",), 16 * MiB), "btrfs": ((), 120 * MiB)}


def btrfs_seed(name: str) -> Path:
    args, size = BTRFS_SEEDS[name]
    tree = small_tree()

    def build(out: Path) -> None:
        _blank(out, size)
        run("mkfs.btrfs", "-q", *args, "-L", "fz-btrfs", out)
        with loop_device(out) as dev, mounted(["mount", "-o", "compress=zstd", dev]) as mnt:
            run("cp", "-a", f"{tree}/.", mnt)
            run("btrfs", "-q", "subvolume", "create", mnt / "subvol")
            (mnt / "subvol" / "in-subvolume.txt").write_bytes(b"inside a subvolume\n")
            for algo in ("zstd", "zlib", "lzo"):
                run("mount", "-o", f"remount,compress={algo}", mnt)
                (mnt / f"{algo}.txt").write_bytes(compressible(150 * KiB))
            run("sync", "-f", mnt)
        run("btrfs", "check", "--readonly", out)

    return cached(f"fuzz-seed-{name}", {"args": args, "size": size, "tree": tree.name}, build)


def ntfs_seed() -> Path:
    tree = small_tree(posix=False)

    def build(out: Path) -> None:
        _blank(out, 4 * MiB)
        run("mkntfs", "-F", "-Q", "-q", "-L", "fz-ntfs", out)
        with mounted(["ntfs-3g", "-o", "compression", os.fspath(out)]) as mnt:
            run("cp", "-r", "--preserve=timestamps", f"{tree}/.", mnt)
            comp = mnt / "compressed"
            comp.mkdir()
            # FILE_ATTRIBUTE_COMPRESSED on the directory: files written into it are LZNT1
            os.setxattr(comp, "system.ntfs_attrib_be", (0x10 | 0x800).to_bytes(4, "big"))
            (comp / "text.txt").write_bytes(compressible(100 * KiB))
            (comp / "interix-link").symlink_to("../docs/readme.md")
        run("ntfsfix", "-n", out)

    return cached("fuzz-seed-ntfs", {"tree": tree.name}, build)


FAT_SEEDS = {
    "fat12": (("-F", "12"), 1 * MiB),
    "fat16": (("-F", "16", "-s", "1"), 4 * MiB),
    "fat32": (("-F", "32", "-s", "1"), 33 * MiB),
}


def fat_seed(name: str) -> Path:
    args, size = FAT_SEEDS[name]
    tree = small_tree(posix=False)

    def build(out: Path) -> None:
        _blank(out, size)
        run("mkfs.vfat", *args, "-n", "FZFAT", out)
        run("mcopy", "-s", "-m", "-i", out, *sorted(tree.iterdir()), "::/")
        run("fsck.vfat", "-n", out)

    return cached(f"fuzz-seed-{name}", {"args": args, "size": size, "tree": tree.name}, build)


def exfat_seed() -> Path:
    tree = small_tree(posix=False)

    def build(out: Path) -> None:
        _blank(out, 4 * MiB)
        run("mkfs.exfat", "-b", "64K", "-L", "FZEXFAT", out)
        # exfat-fuse refuses a plain file: it is given a loop device
        with loop_device(out) as dev, mounted(["mount.exfat-fuse", dev]) as mnt:
            run("cp", "-r", "--preserve=timestamps", f"{tree}/.", mnt)
        run("fsck.exfat", "-n", out)

    return cached("fuzz-seed-exfat", {"tree": tree.name}, build)


# --- QCOW2 --------------------------------------------------------------------------------

QCOW_DISK = 256 * KiB


def _qcow_disk(out: Path) -> None:
    """A raw disk of data, compressible text and holes (zero clusters stay unallocated)."""
    data = bytearray(QCOW_DISK)
    data[0 : 32 * KiB] = block_content("fuzz-qcow", 32 * KiB)
    data[64 * KiB : 112 * KiB] = compressible(48 * KiB)
    data[200 * KiB : 201 * KiB] = b"\xa5" * KiB
    out.write_bytes(data)


def qcow_raw() -> Path:
    return cached("fuzz-qcow-raw", {"size": QCOW_DISK}, _qcow_disk, suffix="raw")


# name -> qemu-img convert options: v2 and v3, 512 B to 64 KiB clusters, zlib and zstd
# compressed clusters, extended L2 entries (subclusters)
QCOW_SEEDS: dict[str, tuple[str, ...]] = {
    "v2-512": ("-o", "compat=0.10,cluster_size=512"),
    "v3-4k-zlib": ("-c", "-o", "cluster_size=4096"),
    "v3-4k-zstd": ("-c", "-o", "cluster_size=4096,compression_type=zstd"),
    "v3-64k": ("-o", "cluster_size=65536"),
    "v3-extl2": ("-o", "cluster_size=16384,extended_l2=on"),
}
#: the backing file every "top" seed names (relative, in the harness's repository)
QCOW_BASE_NAME = "base.qcow2"


def qcow_seed(name: str) -> Path:
    raw = qcow_raw()
    args = QCOW_SEEDS[name]

    def build(out: Path) -> None:
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", *args, raw, out)
        run("qemu-img", "check", out)

    return cached(f"fuzz-seed-qcow-{name}", {"args": args, "raw": raw.name}, build, "qcow2")


def qcow_overlay_seed(extended_l2: bool) -> Path:
    """An overlay over ``base.qcow2`` (the v3-64k seed): a few clusters written, one zeroed,
    one discarded; the rest read through to the backing file."""
    options = "cluster_size=16384,extended_l2=on" if extended_l2 else "cluster_size=4096"
    base = qcow_seed("v3-64k")

    def build(out: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            copy_sparse(base, Path(tmp) / QCOW_BASE_NAME)
            top = Path(tmp) / "top.qcow2"
            run(
                "qemu-img", "create", "-q", "-f", "qcow2", "-o", options,
                "-b", QCOW_BASE_NAME, "-F", "qcow2", top,
            )  # fmt: skip
            for cmd in ("write -P 0x5a 8k 4k", "write -z 16k 16k", "write -P 0x11 100k 2k"):
                run("qemu-io", "-f", "qcow2", "-c", cmd, top)
            run("qemu-img", "check", top)
            copy_sparse(top, out)

    recipe = {"options": options, "base": base.name}
    return cached(
        f"fuzz-seed-qcow-overlay{'-extl2' if extended_l2 else ''}", recipe, build, "qcow2"
    )


#: every seed image by name, for ``scripts/fuzz --seeds`` and the tests
ALL: dict[str, Callable[[], Path]] = {
    **{n: (lambda n=n: ext_seed(n)) for n in EXT_SEEDS},  # type: ignore[misc]
    **{n: (lambda n=n: xfs_seed(n)) for n in XFS_SEEDS},  # type: ignore[misc]
    **{n: (lambda n=n: btrfs_seed(n)) for n in BTRFS_SEEDS},  # type: ignore[misc]
    "ntfs": ntfs_seed,
    **{n: (lambda n=n: fat_seed(n)) for n in FAT_SEEDS},  # type: ignore[misc]
    "exfat": exfat_seed,
    **{f"qcow-{n}": (lambda n=n: qcow_seed(n)) for n in QCOW_SEEDS},  # type: ignore[misc]
    "qcow-overlay": lambda: qcow_overlay_seed(False),
    "qcow-overlay-extl2": lambda: qcow_overlay_seed(True),
}
