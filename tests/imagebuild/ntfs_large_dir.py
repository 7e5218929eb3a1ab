"""An NTFS volume with one large directory, for the page of a directory read from its index.

``/big`` holds ``FILES`` empty files with long names (so the directory's ``$I30`` index
needs thousands of index blocks, and the bitmap of the blocks in use no longer fits in the
MFT entry: a non-resident ``$BITMAP``), ``SUBDIRS`` subdirectories (one with a DOS 8.3
alias, one read-only), an ntfs-3g symlink and a second hard link of one file. Built with
``mkntfs`` and populated through ``ntfs-3g`` (FUSE on the image file); then read back through
a read-only ntfs-3g mount, whose listing (names, and directories by ``is_dir`` without
following links) is stored beside the image as the expected listing: ``big-listing.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.commands import UTC_C, mounted, run
from tests.imagebuild.tree import MiB

FILES = 70_000
SUBDIRS = 20
SIZE = 256 * MiB


def name_of(i: int) -> str:
    return f"Report {i:06d} - a long name that fills the index.txt"


def _build(out: Path) -> None:
    out.mkdir()
    image = out / "ntfs.img"
    with image.open("wb") as fh:
        fh.truncate(SIZE)
    run("mkntfs", "-q", "-F", "-f", "-L", "FRBIG", image, env=UTC_C)
    with tempfile.TemporaryDirectory(prefix="fr-ntfs-big-") as tmp:
        with mounted(["ntfs-3g", "-o", "big_writes", image], Path(tmp) / "rw", env=UTC_C) as m:
            big = m / "big"
            big.mkdir()
            for i in range(FILES):
                (big / name_of(i)).touch()
            for i in range(SUBDIRS):
                (big / f"dir {i:02d}").mkdir()
            (big / "a symlink").symlink_to("dir 00")
            os.link(big / name_of(7), big / "second link of 7.txt")
            # a directory with a DOS 8.3 alias (a second $FILE_NAME, no link of its own) and
            # a read-only one (FILE_ATTRIBUTE_READONLY | FILE_ATTRIBUTE_DIRECTORY)
            os.setxattr(big / "dir 00", "system.ntfs_dos_name", b"DIR00~1")
            os.setxattr(big / "dir 01", "system.ntfs_attrib_be", (0x11).to_bytes(4, "big"))
        with mounted(["ntfs-3g", "-o", "ro", image], Path(tmp) / "ro", env=UTC_C) as m:
            listing = sorted(
                [e.name, e.is_dir(follow_symlinks=False)] for e in os.scandir(m / "big")
            )
    if len(listing) != FILES + SUBDIRS + 2:
        raise RuntimeError(f"ntfs-3g lists {len(listing)} entries in /big")
    (out / "big-listing.json").write_text(json.dumps(listing))


def ntfs_large_dir() -> Path:
    """The cached directory: ``ntfs.img`` and ``big-listing.json``."""
    return cached("ntfs-large-dir", {"files": FILES, "subdirs": SUBDIRS}, _build, suffix="d")
