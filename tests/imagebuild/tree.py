"""Source trees that test images are built from, and that expected values are read from.

A tree is made on the host by plain file operations; the filesystem built from it must then
read back identically. What a tree holds depends on what the target filesystem can store
(``Features``): FAT has no symlinks, NTFS no non-UTF-8 names, and so on.

File content is self-checking: every 4 KiB block of a generated file starts with the file's
name hash and the block index, so a misplaced block is visible, not only a wrong hash.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Features:
    symlinks: bool = True
    hardlinks: bool = True
    non_utf8_names: bool = True
    sparse: bool = True
    big_sparse: bool = False  # a sparse file over 4 GiB
    long_names: bool = True  # 255-byte names
    deep: bool = True  # a 20-deep tree
    posix_modes: bool = True
    many: int = 0  # a directory with this many entries (0: none)
    case_sensitive: bool = True

    def recipe(self) -> dict[str, object]:
        return self.__dict__.copy()


EXT4 = Features(big_sparse=True)
XFS = Features(big_sparse=True)
BTRFS = Features(big_sparse=True)
NTFS = Features(non_utf8_names=False, posix_modes=False, case_sensitive=False)
FAT = Features(
    symlinks=False,
    hardlinks=False,
    non_utf8_names=False,
    sparse=False,
    posix_modes=False,
    case_sensitive=False,
)
EXFAT = FAT


def block_content(name: str, size: int) -> bytes:
    """Deterministic, self-checking content for a file called ``name``."""
    seed = hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()
    out = bytearray()
    block = 0
    while len(out) < size:
        header = seed[:8] + block.to_bytes(8, "little")
        body = hashlib.sha256(header).digest() * 127  # 4064 bytes
        out += (header + body)[:4096]
        block += 1
    return bytes(out[:size])


def _write(path: Path, data: bytes, mode: int = 0o644, mtime: int = 1_600_000_000) -> None:
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, (mtime, mtime))


def make_tree(dest: Path, features: Features = EXT4) -> Path:
    """Create the standard test tree under ``dest`` (which must not exist). Returns dest."""
    dest.mkdir(parents=True)
    f = features
    _write(dest / "hello.txt", b"hello, world\n")
    _write(dest / "empty", b"")
    (dest / "docs").mkdir()
    _write(dest / "docs" / "readme.md", b"# readme\n" * 100, mode=0o640 if f.posix_modes else 0o644)
    _write(dest / "docs" / "data.bin", block_content("data.bin", 3 * MiB + 123))
    _write(
        dest / "docs" / "script.sh", b"#!/bin/sh\necho hi\n", mode=0o755 if f.posix_modes else 0o644
    )
    (dest / "docs" / "sub").mkdir()
    _write(dest / "docs" / "sub" / "nested.txt", b"nested\n")
    (dest / "unicode").mkdir()
    for name in ("café.txt", "日本語のファイル.txt", "emoji-😀.txt", "Ωmega"):
        _write(dest / "unicode" / name, name.encode() + b"\n")
    if f.non_utf8_names:
        bad = os.fsdecode(b"latin1-caf\xe9.txt")
        _write(dest / "unicode" / bad, b"latin-1 name\n")
    if f.long_names:
        # 255 bytes is the limit in ext4/xfs/btrfs (bytes) and NTFS/FAT/exFAT (UTF-16 units)
        _write(dest / ("L" * 251 + ".txt"), b"long name\n")
    if f.deep:
        d = dest
        for i in range(20):
            d = d / f"level{i:02d}"
        d.mkdir(parents=True)
        _write(d / "bottom.txt", b"twenty levels down\n")
    if f.sparse:
        with open(dest / "sparse.bin", "wb") as fh:
            fh.write(block_content("sparse-head", 64 * 1024))
            fh.seek(32 * MiB)
            fh.write(block_content("sparse-tail", 64 * 1024))
    if f.big_sparse:
        with open(dest / "big-sparse.bin", "wb") as fh:
            fh.write(b"start")
            fh.seek(5 * GiB)
            fh.write(block_content("big-tail", 8192))
    if f.hardlinks:
        os.link(dest / "hello.txt", dest / "docs" / "hello-hardlink.txt")
    if f.symlinks:
        os.symlink("docs/readme.md", dest / "link-relative")
        os.symlink("/docs/sub/nested.txt", dest / "link-absolute")
        os.symlink("does/not/exist", dest / "link-dangling")
        os.symlink("loop-b", dest / "loop-a")
        os.symlink("loop-a", dest / "loop-b")
        os.symlink("../../../../etc/passwd", dest / "docs" / "link-escape")
        os.symlink("/etc/passwd", dest / "link-etc-passwd")
        os.symlink("docs", dest / "link-to-dir")
    if f.many:
        many = dest / "many"
        many.mkdir()
        for i in range(f.many):
            (many / f"file{i:05d}.txt").write_bytes(b"%d\n" % i)
    return dest
