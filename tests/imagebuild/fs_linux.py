"""Linux filesystem images (ext2/3/4, XFS, Btrfs) built from source trees by real tools.

Every image is checked against its source tree through a read-only kernel loop mount before
it enters the cache (``verify_mount``), and the loop mount also records what a tree cannot
tell (inode numbers, link counts, ctime, atime, birth time via ``stat %W``) as a JSON
artefact (``mount_facts``), so tests never take expected values from our own reader.

Known tool behaviour, checked here rather than trusted:
- ``mke2fs -d`` keeps hard links, symlinks and holes (e2fsprogs 1.47 copies with
  SEEK_DATA/SEEK_HOLE), but copies times in whole seconds. 128-byte inodes (ext2/ext3 here)
  have no birth time and no sub-second times; ext4 here gets 256-byte inodes.
- XFS is populated by ``cp -a`` through a loop mount, never ``mkfs.xfs -p`` (xfsprogs 6.1
  wrote zeros into a large file that way).
- Btrfs is populated by ``cp -a`` through a loop mount, never ``mkfs.btrfs --rootdir`` (it
  can outgrow the partition); compressed files are written under ``compress=`` mount options
  and must show ``encoded`` extents in ``filefrag -v``.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.imagebuild.cache import cached
from tests.imagebuild.tree import BTRFS, EXT4, XFS, Features, MiB, block_content, make_tree

LATIN1_NAME = os.fsdecode(b"latin1-caf\xe9.txt")
COMPRESSIONS = ("zstd", "zlib", "lzo")


def compressible(name: str, size: int = 3 * MiB) -> bytes:
    """Text that every btrfs compressor shrinks (block_content is incompressible)."""
    line = f"{name}: the quick brown fox jumps over the lazy dog %08d\n"
    out = "".join(line % i for i in range(size // len(line % 0) + 1))
    return out.encode()[:size]


# --- source trees ----------------------------------------------------------------------------


def _xfs_extras(dest: Path) -> None:
    # enough entries that the directory leaves the inode (extents format), with a name
    # libfsxfs cannot decode among them
    d = dest / "blockdir"
    d.mkdir()
    for i in range(200):
        (d / f"entry-{i:03d}-{'x' * 40}.txt").write_bytes(b"%d\n" % i)
    (d / LATIN1_NAME).write_bytes(b"latin-1 in a block directory\n")


def _btrfs_extras(dest: Path) -> None:
    comp = dest / "compressed"
    comp.mkdir()
    for algo in COMPRESSIONS:
        (comp / f"{algo}.txt").write_bytes(compressible(algo))
    sub = dest / "subvol"
    sub.mkdir()
    (sub / "in-subvolume.txt").write_bytes(b"inside the second subvolume\n")
    (sub / "data.bin").write_bytes(block_content("subvol-data", 256 * 1024 + 7))
    (sub / LATIN1_NAME).write_bytes(b"latin-1 in a subvolume\n")


_TREES: dict[str, tuple[Features, Any]] = {
    "ext": (EXT4, None),
    "ext-many": (Features(many=10000), None),
    "xfs": (XFS, _xfs_extras),
    # 2,000 entries spread the directory's items over many leaves
    "btrfs": (Features(**{**BTRFS.recipe(), "many": 2000}), _btrfs_extras),  # type: ignore[arg-type]
}


def linux_tree(name: str) -> Path:
    """The cached source tree ``name`` ("ext", "ext-many", "xfs", "btrfs")."""
    features, extras = _TREES[name]

    def build(tmp: Path) -> None:
        make_tree(tmp, features)
        if extras is not None:
            extras(tmp)

    return cached(f"tree-{name}", {"tree": name, **features.recipe()}, build, suffix="d")


# --- loop devices ----------------------------------------------------------------------------


def run(*args: str | os.PathLike[str]) -> str:
    return subprocess.run(
        [os.fspath(a) for a in args], check=True, capture_output=True, text=True
    ).stdout


@contextlib.contextmanager
def loop_mount(image: Path, options: str = "ro") -> Iterator[Path]:
    """``image`` mounted on a fresh directory through its own loop device."""
    mnt = Path(tempfile.mkdtemp(prefix="fr-mnt-"))
    dev = run("losetup", "-f", "--show", image).strip()
    try:
        run("mount", "-o", options, dev, mnt)
        try:
            yield mnt
        finally:
            run("umount", mnt)
    finally:
        run("losetup", "-d", dev)
        mnt.rmdir()


# --- verification ----------------------------------------------------------------------------


def data_ranges(path: Path) -> list[tuple[int, int]]:
    """(start, end) of each data region of a file per SEEK_DATA/SEEK_HOLE; holes left out."""
    out: list[tuple[int, int]] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, end))
            pos = end
    finally:
        os.close(fd)
    return out


def _same_content(a: Path, b: Path) -> bool:
    """Byte equality, reading only where either side has data (both sides' holes are zeros)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        for start, end in sorted(data_ranges(a) + data_ranges(b)):
            for pos in range(start, end, 16 * MiB):
                n = min(16 * MiB, end - pos)
                if os.pread(fa.fileno(), n, pos) != os.pread(fb.fileno(), n, pos):
                    return False
    return True


def verify_mount(mnt: Path, tree: Path, *, time_resolution_ns: int = 1) -> None:
    """Raise if the mounted filesystem differs from ``tree`` (every entry of the tree)."""
    problems: list[str] = []
    inodes: dict[int, int] = {}
    for dirpath, dirnames, filenames in os.walk(tree):  # str names carry surrogate escapes
        for name in dirnames + filenames:
            src = Path(dirpath) / name
            rel = src.relative_to(tree)
            dst = mnt / rel
            try:
                s, d = src.lstat(), dst.lstat()
            except FileNotFoundError:
                problems.append(f"missing: {rel}")
                continue
            if stat.S_IFMT(s.st_mode) != stat.S_IFMT(d.st_mode):
                problems.append(f"type differs: {rel}")
                continue
            if not stat.S_ISLNK(s.st_mode) and s.st_mode != d.st_mode:
                problems.append(f"mode differs: {rel}")
            if stat.S_ISLNK(s.st_mode):
                if src.readlink() != dst.readlink():
                    problems.append(f"symlink target differs: {rel}")
                continue
            if s.st_mtime_ns // time_resolution_ns != d.st_mtime_ns // time_resolution_ns:
                problems.append(f"mtime differs: {rel}: {s.st_mtime_ns} {d.st_mtime_ns}")
            if stat.S_ISREG(s.st_mode):
                if s.st_size != d.st_size or not _same_content(src, dst):
                    problems.append(f"content differs: {rel}")
                # hard links: the same inode on both sides
                if s.st_nlink > 1 and inodes.setdefault(s.st_ino, d.st_ino) != d.st_ino:
                    problems.append(f"hard link broken: {rel}")
    if problems:
        raise AssertionError("built image differs from its tree:\n" + "\n".join(problems[:50]))


def mount_facts(image: Path, fstype: str, options: str = "ro,noatime") -> Path:
    """A JSON file of per-path metadata as the kernel reports it from a read-only mount."""

    def build(tmp: Path) -> None:
        facts: dict[str, dict[str, Any]] = {}
        with loop_mount(image, options) as mnt:
            paths: list[Path] = []
            for dirpath, dirnames, filenames in os.walk(mnt):
                paths += [Path(dirpath) / name for name in dirnames + filenames]
            births: list[str] = []
            for i in range(0, len(paths), 2000):
                out = subprocess.run(
                    ["stat", "--printf", "%.9W\\0", "--", *paths[i : i + 2000]],
                    check=True,
                    capture_output=True,
                ).stdout
                births += out.decode().split("\0")[:-1]
            for raw, birth in zip(paths, births, strict=True):
                st = raw.lstat()
                rel = "/" + str(raw.relative_to(mnt))
                sec, _, frac = birth.partition(".")
                facts[rel] = {
                    "inode": st.st_ino,
                    "nlink": st.st_nlink,
                    "mode": st.st_mode,
                    "size": st.st_size,
                    "uid": st.st_uid,
                    "gid": st.st_gid,
                    "mtime_ns": st.st_mtime_ns,
                    "atime_ns": st.st_atime_ns,
                    "ctime_ns": st.st_ctime_ns,
                    "btime_ns": None if sec in ("0", "-") else int(sec) * 10**9 + int(frac or 0),
                    "target": str(raw.readlink()) if stat.S_ISLNK(st.st_mode) else None,
                }
        tmp.write_text(json.dumps(facts))

    return cached(f"facts-{image.stem}", {"image": image.name, "fstype": fstype}, build, "json")


# --- builders --------------------------------------------------------------------------------


def ext_image(kind: str, tree_name: str = "ext", size_mib: int = 64, features: str = "") -> Path:
    """An ext2/ext3/ext4 image made by ``mke2fs -t KIND [-O FEATURES] -d TREE``, verified by
    a loop mount. ``features="inline_data"`` keeps small files inside their inodes."""
    tree = linux_tree(tree_name)

    def build(tmp: Path) -> None:
        run("truncate", "-s", f"{size_mib}M", tmp)
        # ext4 gets 256-byte inodes (birth time, ns times), ext2/ext3 the 128-byte inodes
        # mke2fs gives small filesystems: both layouts are read
        inode_size = "256" if kind == "ext4" else "128"
        options = ["-O", features] if features else []
        label = f"fr-{kind}"
        run(
            "mke2fs",
            "-q",
            "-F",
            "-t",
            kind,
            "-I",
            inode_size,
            *options,
            "-L",
            label,
            "-d",
            tree,
            tmp,
        )
        run("e2fsck", "-fn", tmp)
        with loop_mount(tmp, "ro,noload" if kind != "ext2" else "ro") as mnt:
            # mke2fs -d copies whole seconds of the source's times
            verify_mount(mnt, tree, time_resolution_ns=10**9)

    recipe = {"kind": kind, "tree": tree.name, "size": size_mib, "features": features}
    return cached(f"{kind}-{tree_name}{'-' + features if features else ''}", recipe, build)


def xfs_image(size_mib: int = 320) -> Path:
    """An XFS (v5) image populated by ``cp -a`` through a loop mount."""
    tree = linux_tree("xfs")

    def build(tmp: Path) -> None:
        run("truncate", "-s", f"{size_mib}M", tmp)
        run("mkfs.xfs", "-q", "-L", "fr-xfs", tmp)
        with loop_mount(tmp, "rw") as mnt:
            run("cp", "-a", f"{tree}/.", mnt)
        run("xfs_repair", "-n", "-f", tmp)
        with loop_mount(tmp, "ro") as mnt:
            verify_mount(mnt, tree)

    return cached("xfs", {"tree": tree.name, "size": size_mib}, build)


def btrfs_image(size_mib: int = 256) -> Path:
    """A Btrfs image: the tree copied under compress=zstd, ``/subvol`` a second subvolume,
    and ``/compressed/ALGO.txt`` written under compress=ALGO for zstd, zlib and lzo."""
    tree = linux_tree("btrfs")

    def build(tmp: Path) -> None:
        run("truncate", "-s", f"{size_mib}M", tmp)
        run("mkfs.btrfs", "-q", "-L", "fr-btrfs", tmp)
        with loop_mount(tmp, "rw,compress=zstd") as mnt:
            # one cp -a for the whole tree keeps its hard links; then /subvol becomes a
            # subvolume and each /compressed file is rewritten under its own algorithm
            run("cp", "-a", f"{tree}/.", mnt)
            run("mv", mnt / "subvol", mnt / "subvol.tmp")
            run("btrfs", "-q", "subvolume", "create", mnt / "subvol")
            run("cp", "-a", f"{tree}/subvol/.", mnt / "subvol")
            run("rm", "-r", mnt / "subvol.tmp")
            run("chmod", "--reference", tree / "subvol", mnt / "subvol")
            run("touch", "-h", "-r", tree / "subvol", mnt / "subvol")
            for algo in COMPRESSIONS:
                (mnt / "compressed" / f"{algo}.txt").unlink()
            for algo in COMPRESSIONS:
                run("mount", "-o", f"remount,compress={algo}", mnt)
                run("cp", "-a", tree / "compressed" / f"{algo}.txt", mnt / "compressed")
            run("chmod", "--reference", tree / "compressed", mnt / "compressed")
            run("touch", "-h", "-r", tree / "compressed", mnt / "compressed")
            run("sync", "-f", mnt)
            for algo in COMPRESSIONS:
                frag = run("filefrag", "-v", mnt / "compressed" / f"{algo}.txt")
                if "encoded" not in frag:
                    raise AssertionError(f"btrfs did not compress {algo}.txt:\n{frag}")
        run("btrfs", "check", "--readonly", tmp)
        with loop_mount(tmp, "ro") as mnt:
            verify_mount(mnt, tree)

    return cached("btrfs", {"tree": tree.name, "size": size_mib}, build)


def copy_image(image: Path, dest: Path) -> Path:
    """A private copy of a cached image (sparse), for tests that damage it."""
    run("cp", "--sparse=always", image, dest)
    return dest


#: files of ``prealloc_image``: path -> {offset: bytes}; every other byte is zero
PREALLOC_FILES: dict[str, tuple[int, dict[int, bytes]]] = {
    "/prealloc": (4 * MiB, {0: b"abc", 2 * MiB: b"xyz"}),  # fallocate, then two small writes
    "/trunc": (3 * MiB, {0: b"tail"}),  # a hole at the end no extent maps
}


def prealloc_expected(path: str) -> bytes:
    size, writes = PREALLOC_FILES[path]
    out = bytearray(size)
    for offset, data in writes.items():
        out[offset : offset + len(data)] = data
    return bytes(out)


def prealloc_image(fstype: str) -> Path:
    """A filesystem whose free space held random data before files were fallocated in it:
    unwritten extents must read as zeros, never as the stale data beneath them."""
    size = {"ext4": 64, "xfs": 320, "btrfs": 256}[fstype]

    def build(tmp: Path) -> None:
        run("truncate", "-s", f"{size}M", tmp)
        run(f"mkfs.{fstype}", "-q", tmp)
        with loop_mount(tmp, "rw") as mnt:
            (mnt / "junk").write_bytes(os.urandom(8 * MiB))
            run("sync", "-f", mnt)
            (mnt / "junk").unlink()
            run("sync", "-f", mnt)
            run("fallocate", "-l", str(PREALLOC_FILES["/prealloc"][0]), mnt / "prealloc")
            with (mnt / "trunc").open("wb") as fh:
                fh.write(b"tail")
            for name, (length, writes) in PREALLOC_FILES.items():
                with (mnt / name.lstrip("/")).open("r+b") as fh:
                    for offset, data in writes.items():
                        fh.seek(offset)
                        fh.write(data)
                    fh.truncate(length)
            frag = run("filefrag", "-v", mnt / "prealloc")
            if "unwritten" not in frag:
                raise AssertionError(f"no unwritten extent in the fallocated file:\n{frag}")
        with loop_mount(tmp, "ro") as mnt:
            for name in PREALLOC_FILES:
                if (mnt / name.lstrip("/")).read_bytes() != prealloc_expected(name):
                    raise AssertionError(f"the kernel does not read {name} as expected")

    return cached(f"prealloc-{fstype}", {"fstype": fstype, "size": size}, build)
