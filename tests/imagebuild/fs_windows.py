"""Windows-family test images: NTFS, FAT12/16/32 and exFAT, built by real tools and verified.

- NTFS: ``mkntfs -F -Q`` on a file, populated through ``ntfs-3g`` (FUSE, on the file itself:
  ntfs-3g is a userspace driver and needs no loop device) with ``cp -a``. On top of the
  source tree the image holds LZNT1-compressed files (a directory with the compressed
  attribute, set through ntfs-3g's ``system.ntfs_attrib_be`` extended attribute before the
  files are written), a read-only file, and Windows reparse-point symlinks and a junction
  (written through ``system.ntfs_reparse_data``). ntfs-3g itself stores ``ln -s`` symlinks
  as Interix symlinks (a system-flagged file holding ``IntxLNK\\1`` and the UTF-16 target).
- FAT12/16/32: ``mkfs.vfat -F N`` + ``mcopy -s -m`` (keeps mtimes; no mount). mtools stores
  local time; the build runs with ``TZ=UTC``, so the on-disk times are UTC.
- exFAT: ``mkfs.exfat`` + ``mount.exfat-fuse`` on a loop device (it refuses plain files) +
  ``cp -r --preserve=timestamps`` (exFAT has no owners or symlinks).

Every image is re-read by an independent path (ntfs-3g or exfat-fuse read-only, ``mcopy``
back out for FAT) and compared with its source tree before it enters the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.imagebuild import commands
from tests.imagebuild.cache import cached
from tests.imagebuild.commands import loop_device
from tests.imagebuild.tree import EXFAT, FAT, NTFS, Features, MiB, block_content, make_tree

NTFS_TREE = replace(NTFS, many=2000)
FAT_TREE = replace(FAT, many=2000)
# FAT12 holds fewer than 4085 clusters: a small tree keeps the volume in range; FAT16 skips
# the 2,000-entry directory too, because mcopy takes minutes to make its 8.3 aliases
SMALL_FAT_TREE = replace(FAT, many=0)
EXFAT_TREE = replace(EXFAT, many=2000)

TREE_MTIME = 1_600_000_000

# Windows attribute bits (MS-FSCC 2.6)
FILE_ATTRIBUTE_READONLY = 0x1
FILE_ATTRIBUTE_DIRECTORY = 0x10
FILE_ATTRIBUTE_SPARSE_FILE = 0x200
FILE_ATTRIBUTE_COMPRESSED = 0x800

# Reparse tags (MS-FSCC 2.1.2.1) and the symlink "relative" flag (2.1.2.4)
IO_REPARSE_TAG_MOUNT_POINT = 0xA0000003
IO_REPARSE_TAG_SYMLINK = 0xA000000C
SYMLINK_FLAG_RELATIVE = 1

#: reparse-point links put into the NTFS image in place of host symlinks of the same name:
#: name -> (tag, Windows substitute name, print name, POSIX target the host tree holds)
NTFS_REPARSE_LINKS: dict[str, tuple[int, str, str, str]] = {
    "win-link-rel": (
        IO_REPARSE_TAG_SYMLINK,
        "docs\\readme.md",
        "docs\\readme.md",
        "docs/readme.md",
    ),
    "win-link-abs": (
        IO_REPARSE_TAG_SYMLINK,
        "\\??\\C:\\docs\\sub\\nested.txt",
        "C:\\docs\\sub\\nested.txt",
        "/docs/sub/nested.txt",
    ),
    "win-junction": (IO_REPARSE_TAG_MOUNT_POINT, "\\??\\C:\\docs", "C:\\docs", "/docs"),
}
#: files in the compressed directory of the NTFS image (all LZNT1-compressed)
NTFS_COMPRESSED = (
    "compressed/text.txt",
    "compressed/random.bin",
    "compressed/holes.bin",
    "compressed/tiny.txt",
)
NTFS_READ_ONLY = "readonly.txt"
#: a file given a DOS 8.3 alias (a second $FILE_NAME, as Windows makes): listed once, nlink 1
NTFS_DOS_ALIASED = "Long Name File.txt"
NTFS_DOS_ALIAS = "LONGNA~1.TXT"
#: an alternate data stream (ntfs-3g streams_interface=xattr): not listed, not read
NTFS_ADS_FILE, NTFS_ADS_NAME = "docs/readme.md", "secret"
NTFS_ADS_DATA = b"alternate stream " * 300


@dataclass(frozen=True)
class BuiltImage:
    """A filesystem image (the whole file is the filesystem) and the tree it was built from."""

    image: Path
    tree: Path


# --- source trees ------------------------------------------------------------------------------


def _ntfs_extras(root: Path) -> None:
    comp = root / "compressed"
    comp.mkdir()
    (comp / "text.txt").write_bytes(b"The quick brown fox jumps over the lazy dog. " * 24_000)
    (comp / "random.bin").write_bytes(block_content("compressed-random", 300_000))
    with (comp / "holes.bin").open("wb") as fh:
        fh.write(block_content("holes-head", 100_000))
        fh.seek(2 * MiB)
        fh.write(block_content("holes-tail", 100_000))
    (comp / "tiny.txt").write_bytes(b"tiny\n")
    (root / NTFS_READ_ONLY).write_bytes(b"read only\n")
    (root / NTFS_DOS_ALIASED).write_bytes(b"has an 8.3 alias\n")
    os.utime(root / NTFS_DOS_ALIASED, (TREE_MTIME, TREE_MTIME))
    for rel in (*NTFS_COMPRESSED, NTFS_READ_ONLY):
        os.utime(root / rel, (TREE_MTIME, TREE_MTIME))
    (root / NTFS_READ_ONLY).chmod(0o444)
    for name, (_, _, _, posix) in NTFS_REPARSE_LINKS.items():
        (root / name).symlink_to(posix)
    os.utime(comp, (TREE_MTIME, TREE_MTIME))


def _fat_trim(root: Path) -> None:
    # mtools converts names through 16-bit wide characters and silently drops characters
    # outside the BMP, so an emoji name cannot be written by mcopy (FAT itself could hold it).
    for p in (root / "unicode").glob("emoji-*"):
        p.unlink()


def source_tree(
    name: str, features: Features, extras: Callable[[Path], None] | None = None
) -> Path:
    """The cached source tree for an image (built once; expected values are read from it)."""

    def build(dest: Path) -> None:
        make_tree(dest, features)
        if extras is not None:
            extras(dest)

    return cached(f"tree-{name}", features.recipe(), build, suffix="tree")


# --- tool helpers ------------------------------------------------------------------------------


def _run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> str:
    return commands.run(*args, env={**commands.UTC_C, **(env or {})})


def _fuse_mount(argv: list[str], mountpoint: Path) -> contextlib.AbstractContextManager[Path]:
    return commands.mounted(argv, mountpoint, env=commands.UTC_C)


# --- verification ------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def compare_trees(
    source: Path,
    copy: Path,
    mtime_tolerance_ns: int,
    skip: frozenset[str] = frozenset(),
    fold_case: bool = False,
    _rel: Path = Path(),
) -> None:
    """Raise AssertionError unless ``copy`` holds the same names, kinds, bytes and mtimes.

    ``fold_case``: names match case-insensitively (mtools writes "café.txt" as the 8.3 name
    "CAF\x90.TXT" with the lower-case flag and reads it back as "cafÉ.txt").
    """

    def names(d: Path) -> dict[str, Path]:
        return {
            (p.name.casefold() if fold_case else p.name): p
            for p in d.iterdir()
            if (_rel / p.name).as_posix() not in skip
        }

    want, got = names(source), names(copy)
    if want.keys() != got.keys():
        missing, extra = want.keys() - got.keys(), got.keys() - want.keys()
        raise AssertionError(f"{_rel}: names differ: missing {missing}, extra {extra}")
    for key, s in want.items():
        c = got[key]
        ss, cs = s.lstat(), c.lstat()
        where = _rel / s.name
        if stat.S_IFMT(ss.st_mode) != stat.S_IFMT(cs.st_mode):
            raise AssertionError(f"{where}: kind differs")
        if stat.S_ISLNK(ss.st_mode):
            if s.readlink() != c.readlink():
                raise AssertionError(f"{where}: link target {c.readlink()}")
        elif stat.S_ISDIR(ss.st_mode):
            compare_trees(s, c, mtime_tolerance_ns, skip, fold_case, where)
        elif stat.S_ISREG(ss.st_mode):
            if ss.st_size != cs.st_size or _digest(s) != _digest(c):
                raise AssertionError(f"{where}: contents differ")
            if abs(ss.st_mtime_ns - cs.st_mtime_ns) > mtime_tolerance_ns:
                raise AssertionError(f"{where}: mtime {cs.st_mtime_ns} != {ss.st_mtime_ns}")


# --- NTFS --------------------------------------------------------------------------------------


def reparse_data(tag: int, substitute: str, printed: str) -> bytes:
    """A reparse buffer (MS-FSCC 2.1.2.4 symlink, 2.1.2.5 mount point)."""
    sub, prn = substitute.encode("utf-16-le"), printed.encode("utf-16-le")
    if tag == IO_REPARSE_TAG_SYMLINK:
        flags = 0 if substitute.startswith("\\??\\") else SYMLINK_FLAG_RELATIVE
        names = struct.pack("<HHHH", 0, len(sub), len(sub), len(prn))
        body = names + struct.pack("<I", flags) + sub + prn
    else:  # mount point names are NUL-terminated
        names = struct.pack("<HHHH", 0, len(sub), len(sub) + 2, len(prn))
        body = names + sub + b"\0\0" + prn + b"\0\0"
    return struct.pack("<IHH", tag, len(body), 0) + body


def _attrib(path: Path) -> int:
    return int.from_bytes(os.getxattr(path, "system.ntfs_attrib_be", follow_symlinks=False), "big")


def _set_attrib(path: Path, value: int) -> None:
    os.setxattr(path, "system.ntfs_attrib_be", value.to_bytes(4, "big"), follow_symlinks=False)


def _populate_ntfs(tree: Path, mnt: Path) -> None:
    comp = mnt / "compressed"
    comp.mkdir()
    _set_attrib(comp, FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_COMPRESSED)
    _run("cp", "-a", f"{tree}/.", mnt)
    for name, (tag, sub, prn, _) in NTFS_REPARSE_LINKS.items():
        (mnt / name).unlink()
        if tag == IO_REPARSE_TAG_MOUNT_POINT:
            (mnt / name).mkdir()
        else:
            (mnt / name).touch()
        os.setxattr(mnt / name, "system.ntfs_reparse_data", reparse_data(tag, sub, prn))
    os.setxattr(mnt / NTFS_DOS_ALIASED, "system.ntfs_dos_name", NTFS_DOS_ALIAS.encode())
    os.setxattr(mnt / NTFS_ADS_FILE, f"user.{NTFS_ADS_NAME}", NTFS_ADS_DATA)
    ro = mnt / NTFS_READ_ONLY
    _set_attrib(ro, _attrib(ro) | FILE_ATTRIBUTE_READONLY)
    os.utime(mnt, (TREE_MTIME, TREE_MTIME))


def _verify_ntfs(tree: Path, mnt: Path) -> None:
    compare_trees(tree, mnt, mtime_tolerance_ns=99, skip=frozenset(NTFS_REPARSE_LINKS))
    for rel in NTFS_COMPRESSED:
        if not _attrib(mnt / rel) & FILE_ATTRIBUTE_COMPRESSED:
            raise AssertionError(f"{rel} was not compressed by ntfs-3g")
    # ntfs-3g stores holes of compressed files as sparse runs without the sparse flag
    for rel in ("sparse.bin",):
        if not _attrib(mnt / rel) & FILE_ATTRIBUTE_SPARSE_FILE:
            raise AssertionError(f"{rel} is not sparse on NTFS")
    if not _attrib(mnt / NTFS_READ_ONLY) & FILE_ATTRIBUTE_READONLY:
        raise AssertionError("read-only attribute not set")
    for name, (tag, sub, prn, _) in NTFS_REPARSE_LINKS.items():
        data = os.getxattr(mnt / name, "system.ntfs_reparse_data", follow_symlinks=False)
        if data != reparse_data(tag, sub, prn):
            raise AssertionError(f"{name}: reparse data not stored")
    if (mnt / "win-link-rel").readlink() != Path("docs/readme.md"):
        raise AssertionError("ntfs-3g does not read the relative reparse symlink back")
    if os.getxattr(mnt / NTFS_ADS_FILE, f"user.{NTFS_ADS_NAME}") != NTFS_ADS_DATA:
        raise AssertionError("alternate data stream not stored")
    if os.getxattr(mnt / NTFS_DOS_ALIASED, "system.ntfs_dos_name") != NTFS_DOS_ALIAS.encode():
        raise AssertionError("DOS alias not stored")
    a, b = (mnt / "hello.txt").stat(), (mnt / "docs" / "hello-hardlink.txt").stat()
    if a.st_ino != b.st_ino or a.st_nlink != 2:
        raise AssertionError("hard link not kept")


def _build_ntfs(
    tree: Path,
    size: int,
    label: str,
    populate: Callable[[Path, Path], None],
    verify: Callable[[Path, Path], None],
) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        with out.open("wb") as fh:
            fh.truncate(size)
        _run("mkntfs", "-F", "-Q", "-L", label, out)
        with tempfile.TemporaryDirectory(prefix="fr-ntfs-") as tmp:
            rw, ro = "compression,streams_interface=xattr", "ro,streams_interface=xattr"
            with _fuse_mount(["ntfs-3g", "-o", rw, os.fspath(out)], Path(tmp) / "m") as m:
                populate(tree, m)
            with _fuse_mount(["ntfs-3g", "-o", ro, os.fspath(out)], Path(tmp) / "v") as m:
                verify(tree, m)

    return build


def ntfs_image() -> BuiltImage:
    tree = source_tree("ntfs", NTFS_TREE, _ntfs_extras)
    recipe = {"fs": "ntfs", "tree": tree.name, "size": 96 * MiB}
    image = cached(
        "ntfs", recipe, _build_ntfs(tree, 96 * MiB, "FRNTFS", _populate_ntfs, _verify_ntfs)
    )
    return BuiltImage(image, tree)


# --- FAT ---------------------------------------------------------------------------------------

FAT_SIZES = {12: 12 * MiB, 16: 48 * MiB, 32: 96 * MiB}


def _build_fat(tree: Path, bits: int, label: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        with out.open("wb") as fh:
            fh.truncate(FAT_SIZES[bits])
        _run("mkfs.vfat", "-F", str(bits), "-n", label, out)
        _run("mcopy", "-s", "-m", "-i", out, *sorted(tree.iterdir()), "::/")
        with tempfile.TemporaryDirectory(prefix="fr-fat-") as tmp:
            back = Path(tmp) / "back"
            back.mkdir()
            _run("mcopy", "-s", "-m", "-n", "-i", out, "::/*", back)
            # FAT keeps mtimes in 2-second units
            compare_trees(tree, back, mtime_tolerance_ns=2_000_000_000, fold_case=True)

    return build


def fat_image(bits: int) -> BuiltImage:
    features = FAT_TREE if bits == 32 else SMALL_FAT_TREE
    tree = source_tree(f"fat{bits}", features, _fat_trim)
    recipe = {"fs": f"fat{bits}", "tree": tree.name, "size": FAT_SIZES[bits]}
    return BuiltImage(cached(f"fat{bits}", recipe, _build_fat(tree, bits, f"FRFAT{bits}")), tree)


# --- exFAT -------------------------------------------------------------------------------------


def _build_exfat(
    tree: Path, size: int, copy: Callable[[Path, Path], None]
) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        with out.open("wb") as fh:
            fh.truncate(size)
        _run("mkfs.exfat", "-L", "FREXFAT", out)
        with tempfile.TemporaryDirectory(prefix="fr-exfat-") as tmp, loop_device(out) as dev:
            with _fuse_mount(["mount.exfat-fuse", dev], Path(tmp) / "m") as m:
                copy(tree, m)
            with _fuse_mount(["mount.exfat-fuse", "-o", "ro", dev], Path(tmp) / "v") as m:
                # exFAT could keep 10 ms, but exfat-fuse writes whole seconds (even ones)
                compare_trees(tree, m, mtime_tolerance_ns=2_000_000_000)

    return build


def _copy_tree(tree: Path, mnt: Path) -> None:
    _run("cp", "-r", "--preserve=timestamps", f"{tree}/.", mnt)


def exfat_image() -> BuiltImage:
    tree = source_tree("exfat", EXFAT_TREE)
    recipe = {"fs": "exfat", "tree": tree.name, "size": 64 * MiB}
    return BuiltImage(cached("exfat", recipe, _build_exfat(tree, 64 * MiB, _copy_tree)), tree)


# --- one large file, for read throughput ----------------------------------------------------

BIG_FILE = "big.bin"
# large enough for long FAT chains and NTFS runs, small enough for a CI machine's disk (the
# benchmark's 200 MiB file is in tests/imagebuild/bench_core.py)
BIG_SIZE = 64 * MiB + 4097


def _big_tree(dest: Path) -> None:
    dest.mkdir()
    with (dest / BIG_FILE).open("wb") as fh:
        for i in range(0, BIG_SIZE, 8 * MiB):
            fh.write(block_content(f"big-{i}", min(8 * MiB, BIG_SIZE - i)))
    os.utime(dest / BIG_FILE, (TREE_MTIME, TREE_MTIME))


def big_tree() -> Path:
    return cached("tree-big", {"size": BIG_SIZE}, _big_tree, suffix="tree")


def big_image(kind: str) -> BuiltImage:
    """A ``kind`` ("ntfs", "fat32", "exfat") filesystem holding one large file (``BIG_SIZE``)."""
    tree = big_tree()
    size = BIG_SIZE + 64 * MiB
    builders: dict[str, Callable[[Path], None]] = {
        "ntfs": _build_ntfs(
            tree,
            size,
            "FRBIG",
            lambda t, m: _run("cp", "-a", f"{t}/.", m),  # type: ignore[arg-type]  # output unused
            lambda t, m: compare_trees(t, m, 99),
        ),
        "fat32": _build_fat_sized(tree, size),
        "exfat": _build_exfat(tree, size, _copy_tree),
    }
    return BuiltImage(cached(f"big-{kind}", {"fs": kind, "size": size}, builders[kind]), tree)


def read_big_file(kind: str, open_fs: Callable[[Any], Any]) -> bool:
    """Read big_image(kind)'s large file through ``open_fs`` in 4 MiB reads; True when it
    matches the source byte for byte. Prints the MB/s of a second, page-cached pass."""
    from filerestore.blockio import FileReader

    built = big_image(kind)
    want = (built.tree / BIG_FILE).read_bytes()
    chunk = 4 * MiB
    with FileReader(built.image) as reader:
        fs = open_fs(reader)
        file = fs.open("/" + BIG_FILE)
        got = b"".join(file.read_at(pos, chunk) for pos in range(0, file.size, chunk))
        start = time.perf_counter()
        for pos in range(0, file.size, chunk):
            file.read_at(pos, chunk)
        elapsed = time.perf_counter() - start
        fs.close()
    print(f"{kind}: read {BIG_SIZE >> 20} MiB at {BIG_SIZE / elapsed / 1e6:.0f} MB/s (page cache)")
    return got == want


def _build_fat_sized(tree: Path, size: int) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        with out.open("wb") as fh:
            fh.truncate(size)
        _run("mkfs.vfat", "-F", "32", out)
        _run("mcopy", "-m", "-i", out, tree / BIG_FILE, "::/")
        with tempfile.TemporaryDirectory(prefix="fr-fat-") as tmp:
            _run("mcopy", "-m", "-n", "-i", out, f"::/{BIG_FILE}", tmp)
            compare_trees(tree, Path(tmp), 2_000_000_000)

    return build


# --- independent facts -----------------------------------------------------------------------


def seven_zip_listing(image: Path) -> dict[str, dict[str, str]]:
    """``7zz l -slt`` of an image: every entry's fields ("Size", "Modified", ...) by path."""
    out = _run("7zz", "l", "-slt", "-sns", "-sccUTF-8", image)  # -sns: NTFS streams too
    entries: dict[str, dict[str, str]] = {}
    body = out.split("\n----------\n", 1)[1]
    for block in body.split("\n\n"):
        fields = dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
        if "Path" in fields:
            entries["/" + fields["Path"]] = fields
    return entries


def seven_zip_time_ns(text: str) -> int | None:
    """A 7zz time ("2020-09-13 12:26:40.1234567", UTC under TZ=UTC) as ns since the epoch."""
    if not text:
        return None
    whole, _, frac = text.partition(".")
    seconds = int(datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())
    return seconds * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])
