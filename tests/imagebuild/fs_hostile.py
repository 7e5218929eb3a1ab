"""Hostile filesystem images, built byte by byte from valid ones: ONE shared list.

``FS_HOSTILE`` lists ``HostileFs(name, build, kind, action, error, match)``. ``build(workdir)``
copies a cached image built by real tools (tests/imagebuild) and changes a few bytes in it,
located by an independent tool (debugfs, xfs_db, btrfs-map-logical, the boot sector's own
fields); ``action(fs)`` is what a user would do (list, walk, open and read). Opening the
image with the ``kind`` backend and running the action must raise exactly ``error`` with
``match`` in its message, in bounded memory and time. The coverage-guided fuzz harnesses may
take these as seeds.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from filerestore.errors import (
    FileRestoreError,
    FilesystemError,
    UnsupportedImageError,
    VolumeUnavailableError,
)
from filerestore.fs.entry import EntryKind
from tests.imagebuild import fs_linux, fs_special, fs_windows
from tests.imagebuild.cache import cached
from tests.imagebuild.fs_linux import run
from tests.imagebuild.sparse import copy_sparse

Action = Callable[[Any], object]


class HostileFs(NamedTuple):
    name: str
    build: Callable[[Path], Path]
    kind: str  # the fs module that opens it
    action: Action
    error: type[FileRestoreError]
    match: str


def read_everything(fs: Any) -> None:
    """Walk the whole tree and read every file whole: what ``get /`` does."""
    for entry in fs.walk("/"):
        if entry.kind is EntryKind.FILE:
            reader = fs.open(entry.path)
            for pos in range(0, reader.size, 1 << 20):
                reader.read_at(pos, 1 << 20)


def patched(image: Path, workdir: Path, patches: dict[int, bytes]) -> Path:
    out = workdir / f"hostile-{image.name}"
    copy_sparse(image, out)
    with out.open("r+b") as fh:
        for offset, data in patches.items():
            fh.seek(offset)
            fh.write(data)
    return out


# --- ext ------------------------------------------------------------------------------------------


def small_ext4(kind: str = "ext4") -> Path:
    """A small ext2/ext4 (8 MiB, 1 KiB blocks) made by mke2fs -d from the small tree."""
    tree = fs_special.small_tree()

    def build(tmp: Path) -> None:
        run("truncate", "-s", "8M", tmp)
        run("mke2fs", "-q", "-F", "-t", kind, "-b", "1024", "-d", tree, tmp)
        run("e2fsck", "-fn", tmp)
        with fs_linux.loop_mount(tmp, "ro" if kind == "ext2" else "ro,noload") as mnt:
            fs_linux.verify_mount(mnt, tree, time_resolution_ns=10**9)

    return cached(f"{kind}-small", {"tree": tree.name, "kind": kind}, build)


def ext_inode_offset(image: Path, path: str) -> int:
    """Byte offset of ``path``'s inode, as debugfs's imap places it."""
    out = subprocess.run(
        ["debugfs", "-R", f"imap {path}", str(image)], capture_output=True, text=True, check=True
    ).stdout
    block = int(re.search(r"located at block (\d+)", out).group(1))  # type: ignore[union-attr]
    offset = int(re.search(r"offset (0x[0-9a-f]+)", out).group(1), 16)  # type: ignore[union-attr]
    return block * 1024 + offset  # small_ext4 has 1 KiB blocks


EXT_SB = 1024  # the superblock's byte offset; s_feature_incompat at +96, s_desc_size at +254
INCOMPAT_64BIT = 0x80


def ext_descriptor_size(size: int) -> Callable[[Path], Path]:
    """small_ext4 with the 64bit feature's s_desc_size set to ``size`` (the old code divided
    the block size by it and raised a bare ZeroDivisionError)."""

    def build(workdir: Path) -> Path:
        image = small_ext4()
        with image.open("rb") as fh:
            fh.seek(EXT_SB + 96)
            (incompat,) = struct.unpack("<I", fh.read(4))
        return patched(
            image,
            workdir,
            {
                EXT_SB + 96: struct.pack("<I", incompat | INCOMPAT_64BIT),
                EXT_SB + 254: struct.pack("<H", size),
            },
        )

    return build


def ext_sized(path: str, size: int, kind: str = "ext4") -> Callable[[Path], Path]:
    """small_ext4 with ``path``'s i_size_lo and i_size_high (bytes 4 and 108) set."""

    def build(workdir: Path) -> Path:
        image = small_ext4(kind)
        at = ext_inode_offset(image, path)
        lo, hi = size & 0xFFFFFFFF, size >> 32
        return patched(
            image, workdir, {at + 4: struct.pack("<I", lo), at + 108: struct.pack("<I", hi)}
        )

    return build


# --- XFS ------------------------------------------------------------------------------------------

XFS_VERSIONNUM = 100  # sb_versionnum (big-endian u16)
XFS_NLINKBIT = 0x0020


def _xfs_db(image: Path, *commands: str) -> str:
    args = ["xfs_db", "-r"]
    for command in commands:
        args += ["-c", command]
    return subprocess.run([*args, str(image)], capture_output=True, text=True, check=True).stdout


def _v1_inode(data: bytearray, at: int) -> None:
    """Rewrite a v2 inode core as v1 (XFS docs ch. 16: di_version 1 keeps the link count in
    the 16-bit di_onlink at byte 6; di_nlink at byte 16 is unused)."""
    (nlink,) = struct.unpack_from(">I", data, at + 16)
    data[at + 4] = 1
    struct.pack_into(">H", data, at + 6, nlink)
    struct.pack_into(">I", data, at + 16, 0)


def xfs_v1(whole: bool) -> Callable[[Path], Path]:
    """xfs_v4_image with version 1 inodes: every inode and NLINKBIT cleared (what pre-2007
    mkfs.xfs wrote) or, with NLINKBIT kept, only the root inode (a mixed image)."""

    def build(workdir: Path) -> Path:
        image = fs_special.xfs_v4_image()
        out = patched(image, workdir, {})
        data = bytearray(out.read_bytes())
        (versionnum,) = struct.unpack_from(">H", data, XFS_VERSIONNUM)
        (inode_size,) = struct.unpack_from(">H", data, 104)
        root = int(re.search(r"rootino = (\d+)", _xfs_db(image, "sb 0", "p rootino")).group(1))  # type: ignore[union-attr]
        where = re.search(r"\((\d+)\)", _xfs_db(image, f"convert ino {root} byte"))
        root_at = int(where.group(1))  # type: ignore[union-attr]
        if whole:
            struct.pack_into(">H", data, XFS_VERSIONNUM, versionnum & ~XFS_NLINKBIT)
            # every inode of the root's chunk (mkfs puts the whole tree in the first one)
            chunk = root_at - (root_at % (64 * inode_size))
            for at in range(chunk, chunk + 64 * inode_size, inode_size):
                if data[at : at + 2] == b"IN" and data[at + 4] == 2:
                    _v1_inode(data, at)
        else:
            _v1_inode(data, root_at)
        out.write_bytes(bytes(data))
        return out

    return build


# --- exFAT ----------------------------------------------------------------------------------------


def exfat_boot_patch(offset: int, data: bytes) -> Callable[[Path], Path]:
    def build(workdir: Path) -> Path:
        return patched(fs_windows.exfat_image().image, workdir, {offset: data})

    return build


# --- Btrfs ----------------------------------------------------------------------------------------


def _btrfs_fs_tree_root(image: Path) -> int:
    """Logical address of the FS tree's root node (a level-1 node in the standard image)."""
    dump = subprocess.run(
        ["btrfs", "inspect-internal", "dump-tree", "-t", "5", str(image)],
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "replace")  # names are raw bytes
    match = re.search(r"^node (\d+) level ([1-9])", dump, re.M)
    if match is None:
        raise AssertionError("the FS tree has no interior node")
    return int(match.group(1))


def _btrfs_mirrors(image: Path, logical: int) -> list[int]:
    out = run("btrfs-map-logical", "-l", str(logical), image)
    return [int(p) for p in re.findall(r"physical (\d+)", out)]


def btrfs_node_patch(change: Callable[[bytearray, int], None]) -> Callable[[Path], Path]:
    """The standard Btrfs image with the FS tree's root node changed by ``change(node,
    logical)`` in every mirror, its crc32c recomputed so that only the structure is wrong."""

    def build(workdir: Path) -> Path:
        from dissect.util.hash import crc32c

        image = fs_linux.btrfs_image()
        logical = _btrfs_fs_tree_root(image)
        mirrors = _btrfs_mirrors(image, logical)
        with image.open("rb") as fh:
            fh.seek(mirrors[0])
            node = bytearray(fh.read(16384))
        change(node, logical)
        node[0:4] = struct.pack("<I", crc32c.crc32c(bytes(node[0x20:])))
        return patched(image, workdir, dict.fromkeys(mirrors, bytes(node)))

    return build


KEY_PTR = 33  # struct btrfs_key_ptr: disk key (17), blockptr, generation
NODE_HEADER = 101


def _point_to_itself(node: bytearray, logical: int) -> None:
    # every pointer but the first: which keys the second child alone covers depends on the
    # image's layout (cp -a copies in the source tree's inode order, which differs from one
    # build to the next), and a walk may never need them (a large directory's DIR_ITEMs)
    (items,) = struct.unpack_from("<I", node, NODE_HEADER - 5)  # header: nritems, level
    for i in range(1, items):
        struct.pack_into("<Q", node, NODE_HEADER + i * KEY_PTR + 17, logical)


def _swap_keys(node: bytearray, logical: int) -> None:
    a, b = NODE_HEADER + KEY_PTR, NODE_HEADER + 2 * KEY_PTR
    first, second = bytes(node[a : a + 17]), bytes(node[b : b + 17])
    node[a : a + 17], node[b : b + 17] = second, first


def btrfs_half(which: int) -> Callable[[Path], Path]:
    def build(workdir: Path) -> Path:
        return fs_special.btrfs_two_devices()[which]

    return build


FS_HOSTILE: list[HostileFs] = [
    HostileFs(
        "ext-directory-claims-4-gib",
        ext_sized("/docs", 0xFFFFFC00),
        "ext",
        lambda fs: list(fs.list_dir("/docs")),
        FilesystemError,
        "more than its volume holds",
    ),
    HostileFs(
        "ext-directory-with-hole",
        ext_sized("/docs", 3 * 1024),
        "ext",
        lambda fs: list(fs.list_dir("/docs")),
        FilesystemError,
        "has a hole at byte 1024",
    ),
    HostileFs(
        "ext-file-claims-18-eb",
        ext_sized("/hello.txt", 18169410171321712640),
        "ext",
        lambda fs: fs.open("/hello.txt"),
        FilesystemError,
        "more than ext4 allows for a file",
    ),
    HostileFs(
        "ext2-file-claims-18-eb",
        ext_sized("/hello.txt", 18169410171321712640, "ext2"),
        "ext",
        lambda fs: fs.open("/hello.txt"),
        FilesystemError,
        "more than ext2 allows for a file",
    ),
    HostileFs(
        "ext-file-past-ext4-extent-limit",
        ext_sized("/hello.txt", (1 << 32) * 1024),
        "ext",
        lambda fs: fs.open("/hello.txt"),
        FilesystemError,
        "claims 4398046511104 bytes",
    ),
    HostileFs(
        "ext-descriptor-larger-than-a-block",
        ext_descriptor_size(0x8000),
        "ext",
        lambda fs: list(fs.list_dir("/")),
        FilesystemError,
        "group descriptor size 32768 exceeds the block size",
    ),
    HostileFs(
        "xfs-version-1-inodes",
        xfs_v1(whole=True),
        "xfs",
        lambda fs: list(fs.list_dir("/")),
        UnsupportedImageError,
        "unsupported inode version 1",
    ),
    HostileFs(
        "xfs-version-1-root-inode",
        xfs_v1(whole=False),
        "xfs",
        lambda fs: list(fs.list_dir("/")),
        UnsupportedImageError,
        "unsupported inode version 1 (inode",
    ),
    HostileFs(
        "exfat-cluster-count-past-volume",
        exfat_boot_patch(92, struct.pack("<I", 0xFFFFFFF0)),  # ClusterCount (spec 3.1.9)
        "exfat",
        lambda fs: list(fs.list_dir("/")),
        FilesystemError,
        "do not fit in the volume",
    ),
    HostileFs(
        "btrfs-node-points-to-itself",
        btrfs_node_patch(_point_to_itself),
        "btrfs",
        read_everything,
        FilesystemError,
        "a loop or a corrupt tree",
    ),
    HostileFs(
        "btrfs-node-keys-out-of-order",
        btrfs_node_patch(_swap_keys),
        "btrfs",
        read_everything,
        FilesystemError,
        "keys out of order",
    ),
    HostileFs(
        "btrfs-first-of-two-devices",
        btrfs_half(0),
        "btrfs",
        read_everything,
        VolumeUnavailableError,
        "device missing: this filesystem spans 2 devices and this volume is only device 1",
    ),
    HostileFs(
        "btrfs-second-of-two-devices",
        btrfs_half(1),
        "btrfs",
        read_everything,
        VolumeUnavailableError,
        "device missing: this filesystem spans 2 devices and this volume is only device 2",
    ),
]
