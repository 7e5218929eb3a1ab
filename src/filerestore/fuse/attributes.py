"""An Entry as the attributes the kernel is given for it (pure; no FUSE calls here).

What a format does not store is filled so that tools see something sensible and stable:
owners a format lacks (FAT, exFAT, NTFS) are the mounting user's, as the kernel's vfat
driver does without ``uid=``/``gid=``; a missing change time is the modification time,
a missing access time too; a missing link count is 1.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from filerestore.fs.entry import Entry, EntryKind, synthetic_mode

#: read-only and immutable: the kernel may keep names and attributes as long as it likes
CACHE_SECONDS = 24 * 3600.0
#: what ``st_blksize`` advertises: cat, cp and rsync size their reads from it, and 1 MiB is
#: the largest read request FUSE sends (256 pages)
BLOCK_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class Attributes:
    """The ``struct stat`` fields of one entry, as the kernel is told them."""

    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int


def attributes(entry: Entry, ino: int) -> Attributes:
    """The attributes of ``entry`` under inode number ``ino``."""
    mode = entry.mode if entry.mode is not None else synthetic_mode(entry.kind)
    if entry.kind is EntryKind.OTHER and not stat.S_IFMT(mode):
        mode |= stat.S_IFREG  # never hand the kernel a mode without a type
    size = entry.size
    if entry.kind is EntryKind.SYMLINK and entry.target is not None:
        size = len(entry.target.encode("utf-8", "surrogateescape"))
    mtime = entry.mtime_ns or 0
    return Attributes(
        ino=ino,
        mode=mode,
        nlink=entry.nlink or 1,
        uid=os.getuid() if entry.uid is None else entry.uid,
        gid=os.getgid() if entry.gid is None else entry.gid,
        size=size,
        # the formats' allocated sizes are not exposed by fs/: a sparse file reports its
        # length in 512-byte units, like a file without holes
        blocks=(size + 511) // 512,
        atime_ns=entry.atime_ns or mtime,
        mtime_ns=mtime,
        ctime_ns=entry.ctime_ns or mtime,
    )
