"""Builds (once, cached) the benchmark image for bench/core.py with the real tools.

Layout of the cached directory:

- ``source/``: the tree every filesystem is filled from: ``many/`` (N small files) and
  ``big.bin`` (random data); ``manifest.json`` holds its sha256 and the partition of each kind.
- ``disk.qcow2``: GPT, one partition per filesystem kind, uncompressed qcow2.
- ``solo-<kind>.qcow2``: the same filesystem alone on a one-partition GPT disk, for the kinds
  7-Zip reads (it opens qcow2 -> GPT -> filesystem by itself only when the disk holds a
  single partition; with several it stops at the partition list).
- ``chain/``: ``base.qcow2`` (a hard link to disk.qcow2) and ``incr01`` .. ``incr10``, each
  an overlay of the one before that changes one 64 KiB block (written with qemu-io).

Every filesystem is checked after it is built by an independent reader (a kernel loop
mount, ntfs-3g, exfat-fuse, or mtools): the count of small files and the big file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.imagebuild.bench_tools import build_once, lay, mounted, random_file, run
from tests.imagebuild.commands import loop_device
from tests.imagebuild.dir_paths import InDir, read_json

MiB = 1 << 20
VERSION = 3
KINDS = ("ext4", "xfs", "ntfs", "fat32", "exfat", "btrfs")
SEVEN_ZIP_KINDS = ("ext4", "ntfs", "fat32")  # what 7-Zip 26 reads (no XFS, Btrfs, exFAT)
PART_MIB = 320  # mkfs.xfs wants at least 300 MiB
CHAIN_DEPTH = 10


@dataclass(frozen=True)
class Scale:
    name: str
    files: int
    big_mib: int


FULL = Scale("full", 2000, 200)
TINY = Scale("tiny", 200, 4)


@dataclass(frozen=True)
class BenchImage:
    root: Path
    disk = InDir("disk.qcow2")
    chain_top = InDir("chain", f"incr{CHAIN_DEPTH:02d}.qcow2")

    def solo(self, kind: str) -> Path:
        return self.root / f"solo-{kind}.qcow2"

    @property
    def manifest(self) -> dict[str, object]:
        data: dict[str, object] = read_json(self.root / "manifest.json")
        return data


def build(scale: Scale, kinds: tuple[str, ...]) -> BenchImage:
    key = [VERSION, scale.__dict__, kinds]
    source = Path(__file__)
    return BenchImage(
        build_once(f"core-{scale.name}", key, source, lambda tmp: _build(tmp, scale, kinds))
    )


def _build(root: Path, scale: Scale, kinds: tuple[str, ...]) -> None:
    src = root / "source"
    (src / "many").mkdir(parents=True)
    for i in range(scale.files):
        (src / "many" / f"file{i:05d}.txt").write_bytes(b"small file %d\n" % i * 40)
    manifest: dict[str, Any] = {
        "files": scale.files,
        "big_size": scale.big_mib * MiB,
        "big_sha256": random_file(src / "big.bin", scale.big_mib),
    }

    fs_images = {}
    for kind in kinds:
        image = root / f"{kind}.fs"
        BUILDERS[kind](image, src)
        VERIFIERS[kind](image, scale.files, manifest["big_sha256"])
        fs_images[kind] = image

    partitions = _gpt_disk(root / "disk.raw", [fs_images[k] for k in kinds])
    manifest["volumes"] = {k: f"p{i + 1}" for i, k in enumerate(kinds)}
    manifest["partitions"] = partitions
    _to_qcow2(root / "disk.raw", root / "disk.qcow2")
    for kind in kinds:
        if kind in SEVEN_ZIP_KINDS:
            _gpt_disk(root / "solo.raw", [fs_images[kind]])
            _to_qcow2(root / "solo.raw", root / f"solo-{kind}.qcow2")
        fs_images[kind].unlink()
    _chain(root)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _gpt_disk(raw: Path, parts: list[Path]) -> list[dict[str, int]]:
    with raw.open("wb") as fh:
        fh.truncate((2 + PART_MIB * len(parts)) * MiB)
    script = "label: gpt\n" + f"size={PART_MIB}MiB, type=linux\n" * len(parts)
    run("sfdisk", "-q", raw, stdin=script)
    table = json.loads(run("sfdisk", "--json", raw))["partitiontable"]
    for entry, image in zip(table["partitions"], parts, strict=True):
        lay(image, raw, entry["start"] * 512)
    return [{"start": p["start"] * 512, "size": p["size"] * 512} for p in table["partitions"]]


def _to_qcow2(raw: Path, out: Path) -> None:
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out)
    raw.unlink()


def _chain(root: Path) -> None:
    chain = root / "chain"
    chain.mkdir()
    os.link(root / "disk.qcow2", chain / "base.qcow2")
    below = "base.qcow2"
    for i in range(1, CHAIN_DEPTH + 1):
        name = f"incr{i:02d}.qcow2"
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", below, "-F", "qcow2", chain / name)
        # the gap between the GPT entries and the first partition: changes no filesystem
        run(
            "qemu-io",
            "-f",
            "qcow2",
            "-c",
            f"write -P {i} {256 * 1024 + i * 65536} 64k",
            chain / name,
        )
        below = name


# --- filesystems -----------------------------------------------------------------------------


def _blank(image: Path) -> None:
    with image.open("wb") as fh:
        fh.truncate(PART_MIB * MiB)


def _copy_into(src: Path, mnt: Path) -> None:
    shutil.copytree(src / "many", mnt / "many", copy_function=shutil.copyfile)
    shutil.copyfile(src / "big.bin", mnt / "big.bin")
    os.sync()


def _ext4(image: Path, src: Path) -> None:
    run("mke2fs", "-q", "-F", "-t", "ext4", "-L", "bench-ext4", "-d", src, image, f"{PART_MIB}M")


def _xfs(image: Path, src: Path) -> None:
    _blank(image)
    run("mkfs.xfs", "-q", "-L", "bench-xfs", image)
    with mounted(["mount", "-o", "loop", image], image.with_suffix(".mnt"), fuse=False) as mnt:
        _copy_into(src, mnt)


def _btrfs(image: Path, src: Path) -> None:
    _blank(image)
    run("mkfs.btrfs", "-q", "-L", "bench-btrfs", image)
    with mounted(["mount", "-o", "loop", image], image.with_suffix(".mnt"), fuse=False) as mnt:
        _copy_into(src, mnt)


def _ntfs(image: Path, src: Path) -> None:
    _blank(image)
    run("mkntfs", "-q", "-F", "-f", "-L", "bench-ntfs", image)
    with mounted(["ntfs-3g", image], image.with_suffix(".mnt"), fuse=True) as mnt:
        _copy_into(src, mnt)


def _exfat(image: Path, src: Path) -> None:
    _blank(image)
    run("mkfs.exfat", "-L", "benchexfat", image)
    with (
        loop_device(image) as dev,
        mounted(["mount.exfat-fuse", dev], image.with_suffix(".mnt"), fuse=True) as mnt,
    ):
        _copy_into(src, mnt)


def _fat32(image: Path, src: Path) -> None:
    _blank(image)
    run("mkfs.vfat", "-F", "32", "-n", "BENCHFAT", image)
    run("mcopy", "-s", "-m", "-i", image, src / "many", src / "big.bin", "::/")


BUILDERS = {
    "ext4": _ext4,
    "xfs": _xfs,
    "btrfs": _btrfs,
    "ntfs": _ntfs,
    "exfat": _exfat,
    "fat32": _fat32,
}


# --- verification by independent readers ---------------------------------------------------


def _check(count: int, sha: str, want_count: int, want_sha: str, kind: str) -> None:
    if (count, sha) != (want_count, want_sha):
        raise RuntimeError(f"{kind}: built image differs from its source ({count} files, {sha})")


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(4 * MiB):
            h.update(block)
    return h.hexdigest()


def _verify_mount(
    argv: list[str | os.PathLike[str]], fuse: bool, kind: str
) -> Callable[[Path, int, str], None]:
    def verify(image: Path, files: int, sha: str) -> None:
        mnt = image.with_suffix(".check")
        with mounted([*argv, image], mnt, fuse=fuse):
            count = len(list((mnt / "many").iterdir()))
            _check(count, _file_sha(mnt / "big.bin"), files, sha, kind)

    return verify


def _verify_exfat(image: Path, files: int, sha: str) -> None:
    with (
        loop_device(image) as dev,
        mounted(
            ["mount.exfat-fuse", "-o", "ro", dev], image.with_suffix(".check"), fuse=True
        ) as mnt,
    ):
        _check(len(list((mnt / "many").iterdir())), _file_sha(mnt / "big.bin"), files, sha, "exfat")


def _verify_fat(image: Path, files: int, sha: str) -> None:
    names = run("mdir", "-b", "-i", image, "::/many").split()
    data = subprocess.run(
        ["mtype", "-i", image, "::/big.bin"], capture_output=True, check=True
    ).stdout
    _check(len(names), hashlib.sha256(data).hexdigest(), files, sha, "fat32")


VERIFIERS = {
    "ext4": _verify_mount(["mount", "-o", "ro,loop"], False, "ext4"),
    "xfs": _verify_mount(["mount", "-o", "ro,loop"], False, "xfs"),
    "btrfs": _verify_mount(["mount", "-o", "ro,loop"], False, "btrfs"),
    "ntfs": _verify_mount(["ntfs-3g", "-o", "ro"], True, "ntfs"),
    "exfat": _verify_exfat,
    "fat32": _verify_fat,
}
