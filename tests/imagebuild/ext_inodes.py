"""ext images for the inode tests (tests/fs/test_ext_inodes.py): made by mke2fs in two
layouts and filled through a kernel loop mount, so every value on disk was encoded by the
kernel: times with nanoseconds and epoch bits, 32-bit owners, a size past 4 GiB, fast and
slow symlinks, directories spread over the block groups."""

from __future__ import annotations

import os
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.fs_linux import loop_mount, run

FAST_TARGET = "f" * 59  # the longest target kept in i_block (60 bytes, NUL-terminated)
SLOW_TARGET = "s" * 60  # one more byte: a data block
LONG_TARGET = "/" + "/".join(["long-component"] * 20)
# 2200-01-01T00:00:00.123456789Z needs the epoch bits; 1930 is before 1970 (negative seconds)
FUTURE_NS = 7_258_118_400_123_456_789
PAST_NS = -1_262_304_000_000_000_000 + 987_654_321
BIG_SIZE = 5 * 2**30 + 12345
OWNER = (100_000, 200_001)  # both need the high 16 bits
TOP_DIRS = 40  # spread by the Orlov allocator over the block groups

# ext4 with 1 KiB blocks and 256 blocks per group: 192 groups, 16 64-bit descriptors per
# block, so 12 meta groups; ext2 with 128-byte inodes (no nanoseconds, no birth time) and
# 32-byte descriptors in one table
LAYOUTS = {
    "ext4-meta_bg": [
        "-t", "ext4", "-b", "1024", "-g", "256", "-I", "256", "-N", "6144",
        "-O", "meta_bg,^resize_inode,64bit",
    ],
    "ext2-128": ["-t", "ext2", "-b", "1024", "-g", "256", "-I", "128"],
}  # fmt: skip


def _populate(root: Path) -> None:
    for i in range(TOP_DIRS):
        d = root / f"d{i:02}"
        d.mkdir()
        (d / "f").write_bytes(f"file {i}\n".encode())
    times = root / "times"
    times.write_bytes(b"t")
    os.utime(times, ns=(PAST_NS, FUTURE_NS))
    owned = root / "owned"
    owned.write_bytes(b"o")
    os.chown(owned, *OWNER)
    with (root / "big").open("wb") as f:
        f.truncate(BIG_SIZE)
    os.link(root / "owned", root / "owned-link")
    os.symlink(FAST_TARGET, root / "fast")
    os.symlink(SLOW_TARGET, root / "slow")
    os.symlink(LONG_TARGET, root / "long")
    os.mkfifo(root / "fifo")


def image(layout: str) -> Path:
    def build(tmp: Path) -> None:
        run("truncate", "-s", "48M", tmp)
        run("mke2fs", "-q", "-F", *LAYOUTS[layout], "-L", "fr-inodes", tmp)
        with loop_mount(tmp, "rw") as mnt:
            _populate(mnt)
        run("e2fsck", "-fn", tmp)

    return cached(f"ext-inodes-{layout}", {"layout": LAYOUTS[layout]}, build)
