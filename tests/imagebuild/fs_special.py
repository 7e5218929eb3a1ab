"""Filesystem images for the cases the standard trees do not hold, built by real tools.

- ``btrfs_two_devices``: one Btrfs filesystem over two devices (``mkfs.btrfs`` on two loop
  devices, metadata RAID1 and data single), populated and verified through a kernel mount
  of both; a test then opens each half alone.
- ``xfs_v4_image``: a version 4 XFS (``mkfs.xfs -m crc=0``), populated at mkfs time from a
  protofile because this kernel no longer mounts v4; checked by ``xfs_repair -n`` and by
  ``xfs_db`` listing every directory. Its version-1-inode twin is made byte by byte
  (fs_hostile.py), since no xfsprogs that writes v1 inodes is packaged any more.
- ``ntfs_reparse_image``: NTFS files whose reparse points hand their data to somebody else
  (cloud files, Data Deduplication, a WIMBoot WIM, an unknown owner), written through
  ntfs-3g's ``system.ntfs_reparse_data`` attribute on sparse files, and read back by
  ntfs-3g.
- ``ntfs_wof_image``: WOF-compressed ("Compact OS") files. ``wimlib-imagex apply
  --compact`` only works on Windows, so the compressed data comes from wimlib's own
  compressors instead: the source files are captured into WIMs with XPRESS (4, 8 and
  16 KiB chunks) and LZX (32 KiB chunks), the format WOF shares with WIM resources (a chunk
  offset table, then the chunks), and each file's resource is written as its
  ``WofCompressedData`` stream by ntfs-3g (``streams_interface=windows``), with the WOF
  reparse point on the sparse unnamed stream. The WIMs are checked by ``wimlib-imagex
  apply`` back into a directory equal to the source tree.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.fs_linux import run, verify_mount
from tests.imagebuild.fs_windows import _fuse_mount, _run, compare_trees
from tests.imagebuild.tree import MiB, block_content

# --- Btrfs over two devices -------------------------------------------------------------------


def _small_tree(dest: Path) -> Path:
    dest.mkdir()
    (dest / "hello.txt").write_bytes(b"hello, world\n")
    (dest / "docs").mkdir()
    (dest / "docs" / "readme.md").write_bytes(b"# readme\n" * 100)
    (dest / "docs" / "sub").mkdir()
    (dest / "docs" / "sub" / "nested.txt").write_bytes(b"nested\n")
    (dest / "data.bin").write_bytes(block_content("two-devices", 3 * MiB))
    return dest


def small_tree() -> Path:
    return cached("tree-small", {"files": 4}, _small_tree, suffix="d")  # type: ignore[arg-type]


def btrfs_two_devices() -> tuple[Path, Path]:
    """The two device images of one Btrfs filesystem (see the module docstring)."""
    tree = small_tree()

    def build(tmp: Path) -> None:
        tmp.mkdir()
        images = [tmp / "dev1.img", tmp / "dev2.img"]
        for image in images:
            run("truncate", "-s", "160M", image)
        devs = [run("losetup", "-f", "--show", image).strip() for image in images]
        try:
            run("mkfs.btrfs", "-q", "-m", "raid1", "-d", "single", *devs)
            mnt = Path(tempfile.mkdtemp(prefix="fr-mnt-"))
            try:
                run("mount", devs[0], mnt)
                try:
                    run("cp", "-a", f"{tree}/.", mnt)
                    run("sync", "-f", mnt)
                    show = run("btrfs", "filesystem", "show", mnt)
                    if "Total devices 2" not in show:
                        raise AssertionError(f"not a two-device filesystem:\n{show}")
                finally:
                    run("umount", mnt)
                run("mount", "-o", "ro", devs[0], mnt)
                try:
                    verify_mount(mnt, tree)
                finally:
                    run("umount", mnt)
            finally:
                mnt.rmdir()
        finally:
            for dev in devs:
                subprocess.run(["losetup", "-d", dev], check=False)

    out = cached("btrfs-two-devices", {"tree": tree.name}, build, suffix="d")
    return out / "dev1.img", out / "dev2.img"


# --- XFS version 4 ----------------------------------------------------------------------------

#: the files of the v4 image: path -> contents (directories implied)
XFS_V4_FILES = {
    "/hello.txt": b"hello, world\n",
    "/docs/readme.md": b"# readme\n" * 100,
    "/docs/sub/nested.txt": b"nested\n",
}


def _protofile(src: Path) -> str:
    """An mkfs.xfs protofile (xfs_mkfs(8) "-p") for XFS_V4_FILES written under ``src``."""
    lines = ["fr-v4", "0 0", "d--755 0 0"]

    def emit(directory: Path, depth: int) -> None:
        for child in sorted(directory.iterdir()):
            pad = " " * depth
            if child.is_dir():
                lines.append(f"{pad}{child.name} d--755 0 0")
                emit(child, depth + 1)
                lines.append(f"{pad}$")
            else:
                lines.append(f"{pad}{child.name} ---644 0 0 {child}")

    emit(src, 1)
    lines.append("$")
    return "\n".join(lines) + "\n"


def xfs_v4_image() -> Path:
    def build(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="fr-xfs4-") as work:
            src = Path(work) / "src"
            for rel, data in XFS_V4_FILES.items():
                path = src / rel.lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            proto = Path(work) / "proto"
            proto.write_text(_protofile(src))
            run("truncate", "-s", "320M", tmp)
            run("mkfs.xfs", "-q", "-f", "-m", "crc=0", "-p", proto, tmp)
        run("xfs_repair", "-n", "-f", tmp)
        for directory, names in (("/", {"hello.txt", "docs"}), ("/docs", {"readme.md", "sub"})):
            listing = run("xfs_db", "-r", "-c", f"ls {directory}", tmp)
            if not names <= set(listing.split()):
                raise AssertionError(f"xfs_db does not list {names} in {directory}:\n{listing}")
        if "versionnum" not in run("xfs_db", "-r", "-c", "sb 0", "-c", "p versionnum", tmp):
            raise AssertionError("no superblock version")

    return cached("xfs-v4", {"files": sorted(XFS_V4_FILES)}, build)


# --- NTFS reparse points that keep data elsewhere -------------------------------------------------

IO_REPARSE_TAG_DEDUP = 0x80000013
IO_REPARSE_TAG_WOF = 0x80000017
IO_REPARSE_TAG_CLOUD = 0x9000001A
IO_REPARSE_TAG_CLOUD_3 = 0x9000301A
UNKNOWN_TAG = 0x8000BEEF  # a Microsoft-range tag no filter we know owns
WOF_PROVIDER_WIM, WOF_PROVIDER_FILE = 1, 2


def reparse_buffer(tag: int, data: bytes) -> bytes:
    """REPARSE_DATA_BUFFER ([MS-FSCC] 2.1.2.2): tag, data length, reserved, data."""
    return struct.pack("<IHH", tag, len(data), 0) + data


def wof_data(provider: int, algorithm: int = 0) -> bytes:
    """WOF_EXTERNAL_INFO + FILE_PROVIDER_EXTERNAL_INFO_V1 (or the WIM provider's info)."""
    if provider == WOF_PROVIDER_FILE:
        return struct.pack("<IIII", 1, provider, 1, algorithm)
    # WIM_PROVIDER_EXTERNAL_INFO: version, flags, data source id, resource hash
    return struct.pack("<IIIIQ", 1, provider, 1, 0, 7) + bytes(20)


@dataclass(frozen=True)
class ReparseFile:
    size: int
    tag: int
    data: bytes
    written: bool  # the unnamed stream holds its bytes (else it is sparse)
    location: str | None  # what the product must report


HYDRATED = block_content("hydrated", 20_000)

#: name -> the file put into ntfs_reparse_image
NTFS_REPARSE_FILES: dict[str, ReparseFile] = {
    "cloud-online-only.docx": ReparseFile(
        70_000, IO_REPARSE_TAG_CLOUD, b"\x01" + bytes(63), False, "cloud"
    ),
    "cloud3-online-only.txt": ReparseFile(
        5_000, IO_REPARSE_TAG_CLOUD_3, b"\x01" + bytes(63), False, "cloud"
    ),
    "cloud-hydrated.bin": ReparseFile(
        len(HYDRATED), IO_REPARSE_TAG_CLOUD, b"\x01" + bytes(63), True, None
    ),
    "dedup.vhdx": ReparseFile(200_000, IO_REPARSE_TAG_DEDUP, bytes(80), False, "dedup"),
    "wimboot.dll": ReparseFile(9_000, IO_REPARSE_TAG_WOF, wof_data(WOF_PROVIDER_WIM), False, "wim"),
    "unknown-owner.dat": ReparseFile(4_096, UNKNOWN_TAG, b"opaque", False, "reparse"),
    "unknown-with-data.dat": ReparseFile(len(HYDRATED), UNKNOWN_TAG, b"opaque", True, None),
}


#: a WOF file-provider reparse point with no WofCompressedData stream: corrupt (it would read
#: as its sparse unnamed stream, all zeros)
WOF_WITHOUT_STREAM = "wof-without-stream.dll"
WOF_WITHOUT_STREAM_DATA = wof_data(WOF_PROVIDER_FILE, 1)


def _populate_reparse(mnt: Path) -> None:
    with (mnt / WOF_WITHOUT_STREAM).open("wb") as fh:
        fh.truncate(40_000)
    buffer = reparse_buffer(IO_REPARSE_TAG_WOF, WOF_WITHOUT_STREAM_DATA)
    os.setxattr(mnt / WOF_WITHOUT_STREAM, "system.ntfs_reparse_data", buffer)
    # checked here: ntfs-3g cannot look this file up again (no stream for its WOF plugin)
    if os.getxattr(mnt / WOF_WITHOUT_STREAM, "system.ntfs_reparse_data") != buffer:
        raise AssertionError(f"{WOF_WITHOUT_STREAM}: reparse data not stored")
    for name, spec in NTFS_REPARSE_FILES.items():
        path = mnt / name
        with path.open("wb") as fh:
            if spec.written:
                fh.write(HYDRATED[: spec.size])
            fh.truncate(spec.size)
        os.setxattr(path, "system.ntfs_reparse_data", reparse_buffer(spec.tag, spec.data))


def _verify_reparse(mnt: Path) -> None:
    for name, spec in NTFS_REPARSE_FILES.items():
        got = os.getxattr(mnt / name, "system.ntfs_reparse_data", follow_symlinks=False)
        if got != reparse_buffer(spec.tag, spec.data):
            raise AssertionError(f"{name}: reparse data not stored")


def _ntfs(
    size: int, populate: Callable[[Path], None], verify: Callable[[Path], None], options: str
) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        with out.open("wb") as fh:
            fh.truncate(size)
        _run("mkntfs", "-F", "-Q", "-L", "FRSPECIAL", out)
        with tempfile.TemporaryDirectory(prefix="fr-ntfs-") as tmp:
            with _fuse_mount(["ntfs-3g", "-o", options, os.fspath(out)], Path(tmp) / "m") as m:
                populate(m)
            ro = f"ro,{options}"
            with _fuse_mount(["ntfs-3g", "-o", ro, os.fspath(out)], Path(tmp) / "v") as m:
                verify(m)

    return build


def ntfs_reparse_image() -> Path:
    recipe = {n: [s.size, s.tag, s.data.hex(), s.written] for n, s in NTFS_REPARSE_FILES.items()}
    build = _ntfs(32 * MiB, _populate_reparse, _verify_reparse, "streams_interface=windows")
    return cached("ntfs-reparse", recipe, build)


# --- NTFS with WOF-compressed files ----------------------------------------------------------

#: directory in the image -> (wimlib --compress, --chunk-size, WOF algorithm number)
WOF_VARIANTS = {
    "xpress4k": ("xpress", 4096, 0),
    "lzx": ("lzx", 32768, 1),
    "xpress8k": ("xpress", 8192, 2),
    "xpress16k": ("xpress", 16384, 3),
}


def _wof_tree(dest: Path) -> Path:
    dest.mkdir()
    line = b"%06d The quick brown fox jumps over the lazy dog, again and again.\n"
    (dest / "text.txt").write_bytes(b"".join(line % i for i in range(5_000)))
    (dest / "random.bin").write_bytes(block_content("wof-random", 100_000))
    mixed = b"abc" * 30_000 + block_content("wof-mixed", 50_000) + b"z" * 70_007
    (dest / "mixed.bin").write_bytes(mixed)
    (dest / "tiny.txt").write_bytes(b"hello\n")
    return dest


def wof_tree() -> Path:
    return cached("tree-wof", {"files": 4}, _wof_tree, suffix="d")  # type: ignore[arg-type]


def wim_resources(wim: Path) -> dict[bytes, tuple[int, bytes, int]]:
    """SHA-1 of each stream -> (resource flags, stored bytes, uncompressed size), from the
    WIM's header (lookup table resource at byte 48) and lookup table (50-byte entries:
    24-byte resource header, part number, reference count, SHA-1)."""
    data = wim.read_bytes()
    if data[:8] != b"MSWIM\0\0\0":
        raise AssertionError(f"{wim} is not a WIM")
    size_flags, offset, _ = struct.unpack_from("<QQQ", data, 48)
    table = data[offset : offset + (size_flags & ((1 << 56) - 1))]
    out: dict[bytes, tuple[int, bytes, int]] = {}
    for pos in range(0, len(table), 50):
        packed, where, original = struct.unpack_from("<QQQ", table, pos)
        stored = packed & ((1 << 56) - 1)
        out[table[pos + 30 : pos + 50]] = (packed >> 56, data[where : where + stored], original)
    return out


RESOURCE_COMPRESSED = 0x04


def wof_stream(flags: int, stored: bytes, size: int, chunk: int) -> bytes:
    """A WofCompressedData stream: a WIM resource is one already; a resource wimlib kept
    uncompressed gets the chunk table of raw chunks (each chunk stored as itself)."""
    if flags & RESOURCE_COMPRESSED:
        return stored
    ends = range(chunk, size, chunk)  # the end of every chunk but the last
    entry = "<Q" if size > 0xFFFFFFFF else "<I"
    return b"".join(struct.pack(entry, end) for end in ends) + stored


def _wim(tree: Path, work: Path, compress: str, chunk: int) -> Path:
    wim = work / f"{compress}-{chunk}.wim"
    _run("wimlib-imagex", "capture", tree, wim, f"--compress={compress}", f"--chunk-size={chunk}")
    back = work / f"{compress}-{chunk}.back"
    _run("wimlib-imagex", "apply", wim, "1", back)
    compare_trees(tree, back, mtime_tolerance_ns=10**9)
    return wim


def ntfs_wof_image() -> Path:
    tree = wof_tree()

    def populate(mnt: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="fr-wim-") as work:
            for directory, (compress, chunk, algorithm) in WOF_VARIANTS.items():
                resources = wim_resources(_wim(tree, Path(work), compress, chunk))
                (mnt / directory).mkdir()
                for src in sorted(tree.iterdir()):
                    content = src.read_bytes()
                    flags, stored, size = resources[hashlib.sha1(content).digest()]
                    path = mnt / directory / src.name
                    with path.open("wb") as fh:
                        fh.truncate(len(content))
                    stream = wof_stream(flags, stored, size, chunk)
                    named = Path(f"{path}:WofCompressedData")
                    named.write_bytes(stream)
                    # read back now: once the WOF reparse point is set, ntfs-3g (without its
                    # system-compression plugin) refuses to open the file
                    if named.read_bytes() != stream:
                        raise AssertionError(f"{named}: stream not stored")
                    buffer = reparse_buffer(
                        IO_REPARSE_TAG_WOF, wof_data(WOF_PROVIDER_FILE, algorithm)
                    )
                    os.setxattr(path, "system.ntfs_reparse_data", buffer)

    def verify(mnt: Path) -> None:
        for directory, (_, _, algorithm) in WOF_VARIANTS.items():
            for src in tree.iterdir():
                path = mnt / directory / src.name
                got = os.getxattr(path, "system.ntfs_reparse_data", follow_symlinks=False)
                if got != reparse_buffer(
                    IO_REPARSE_TAG_WOF, wof_data(WOF_PROVIDER_FILE, algorithm)
                ):
                    raise AssertionError(f"{path}: WOF reparse point not stored")

    build = _ntfs(32 * MiB, populate, verify, "streams_interface=windows")
    recipe = {"tree": tree.name, "variants": WOF_VARIANTS}
    return cached("ntfs-wof", recipe, build)
