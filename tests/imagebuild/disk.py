"""Partitioned test disks: GPT and MBR tables made by sfdisk, and whole-disk filesystems.

- ``build_disk(table, partitions)``: a raw disk with a GPT or MBR table (sfdisk script) and
  filesystem images (raw files built by other builders) laid into the partitions. MBR disks
  with more than four partitions get three primaries and an extended partition holding the
  rest as logical partitions.
- ``gpt_disk``, ``gpt4k_disk``, ``mbr_disk``: tables with names, an empty GPT slot, logical
  partitions, 4096-byte logical sectors (sfdisk on a ``losetup --sector-size 4096`` device).
- ``whole_disk(kind)``: FAT, NTFS or exFAT made directly on the file (no table).
- ``table_disk(dest, script, size)``: a disk of ``size`` bytes partitioned by an sfdisk script.

Disks holding LVM2 volume groups are in :mod:`tests.imagebuild.lvm_disks`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.imagebuild.cache import cached
from tests.imagebuild.commands import loop_device, run
from tests.imagebuild.tree import MiB

PartitionSpec = tuple[int, str, str | None, Path | None]  # size, type, name, fs image

GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_EFI = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_MSDATA = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
GPT_LVM = "E6D6D379-F507-44C2-A23C-238F2A3DF928"


def sfdisk_json(path: Path) -> dict[str, Any]:
    """``sfdisk --json`` of a disk image: the expected values of every table test."""
    table: dict[str, Any] = json.loads(run("sfdisk", "--json", path))["partitiontable"]
    return table


def _copy_sparse(src: Path, dst: Path, offset: int) -> None:
    """Write ``src`` into ``dst`` at ``offset``, skipping zero blocks (they are zeros already)."""
    with src.open("rb") as fin, dst.open("r+b") as fout:
        pos = 0
        while chunk := fin.read(MiB):
            if chunk.count(0) != len(chunk):
                os.pwrite(fout.fileno(), chunk, offset + pos)
            pos += len(chunk)


# --- build_disk: a table and filesystem images laid into it ---------------------------------


def _sfdisk_script(table: str, parts: list[PartitionSpec]) -> str:
    lines = [f"label: {'gpt' if table == 'gpt' else 'dos'}", "unit: sectors", ""]
    for i, (size, ptype, name, _img) in enumerate(parts):
        if table == "mbr" and len(parts) > 4 and i == 3:
            lines.append("type=5")  # the extended container takes the rest of the disk
        line = f"size={size // 512}, type={ptype}"
        if name and table == "gpt":
            line += f', name="{name}"'
        lines.append(line)
    return "\n".join(lines) + "\n"


def _build_disk(dest: Path, table: str, parts: list[PartitionSpec]) -> None:
    # 1 MiB before the first partition (and between logical ones: sfdisk aligns), 1 MiB after
    extra = MiB * (2 + max(0, len(parts) - 3))
    dest.touch()
    os.truncate(dest, sum(p[0] for p in parts) + extra)
    run("sfdisk", "-q", "--wipe", "always", dest, stdin=_sfdisk_script(table, parts))
    got = [p for p in sfdisk_json(dest)["partitions"] if p["type"] not in ("5", "f")]
    if [p["size"] * 512 for p in got] != [p[0] for p in parts]:
        raise RuntimeError(f"sfdisk laid out {got}, not {parts}")
    for spec, p in zip(parts, got, strict=True):
        img = spec[3]
        if img is not None:
            if img.stat().st_size > spec[0]:
                raise RuntimeError(f"{img} is larger than its partition")
            _copy_sparse(img, dest, p["start"] * 512)


def build_disk(table: str, partitions: list[PartitionSpec]) -> Path:
    """A raw disk with a ``table`` ("gpt" or "mbr") holding ``partitions``, cached.

    Each partition is (size in bytes, sfdisk type (GUID, hex id or alias), GPT name or None,
    raw filesystem image to write into it or None). Sizes must be multiples of 1 MiB.
    """
    if table not in ("gpt", "mbr"):
        raise ValueError(f"unknown table {table!r}")
    recipe = {
        "table": table,
        "parts": [
            [s, t, n, None if i is None else [str(i), i.stat().st_size, i.stat().st_mtime_ns]]
            for s, t, n, i in partitions
        ],
    }
    return cached(f"disk-{table}", recipe, lambda d: _build_disk(d, table, partitions))


# --- partition tables to compare with sfdisk ------------------------------------------------

GPT_SCRIPT = f"""label: gpt
unit: sectors
disk.img1 : start=2048, size=16384, type={GPT_EFI}, name="EFI system partition"
disk.img2 : start=18432, size=32768, type={GPT_LINUX}, name="root"
disk.img4 : start=53248, size=8192, type={GPT_MSDATA}, name="Données ☃"
disk.img3 : start=63488, size=4096, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F
"""

MBR_SCRIPT = """label: dos
unit: sectors
size=16384, type=83
size=16384, type=c, bootable
size=16384, type=7
type=5
size=12288, type=83
size=12288, type=8e
size=12288, type=b
"""


def table_disk(dest: Path, script: str, size: int) -> None:
    """``dest``, ``size`` bytes, partitioned by the sfdisk ``script``."""
    dest.touch()
    os.truncate(dest, size)
    run("sfdisk", "-q", dest, stdin=script)


def gpt_disk() -> Path:
    """GPT: EFI, Linux, Microsoft data (unicode name, slot 4) and swap (slot 3, unnamed)."""
    return cached("gpt", GPT_SCRIPT, lambda d: table_disk(d, GPT_SCRIPT, 40 * MiB))


def mbr_disk() -> Path:
    """MBR: three primaries (one bootable) and an extended partition with three logicals."""
    return cached("mbr", MBR_SCRIPT, lambda d: table_disk(d, MBR_SCRIPT, 64 * MiB))


def _gpt4k(dest: Path) -> None:
    dest.mkdir()
    img = dest / "disk.img"
    img.touch()
    os.truncate(img, 64 * MiB)
    with loop_device(img, "--sector-size", "4096") as dev:
        script = (
            f'label: gpt\nsize=4096, type={GPT_LINUX}, name="four-k one"\n'
            f'size=2048, type={GPT_MSDATA}, name="four-k two"\n'
        )
        run("sfdisk", "-q", dev, stdin=script)
        table = sfdisk_json(Path(dev))
    if table["sectorsize"] != 4096:
        raise RuntimeError(f"sfdisk used {table['sectorsize']}-byte sectors")
    (dest / "sfdisk.json").write_text(json.dumps(table))


def gpt4k_disk() -> Path:
    """A directory: ``disk.img`` (GPT on 4096-byte logical sectors) and its ``sfdisk.json``."""
    return cached("gpt4k", 1, _gpt4k, suffix="d")


# --- filesystems on the whole disk ----------------------------------------------------------


def _whole(dest: Path, kind: str) -> None:
    dest.touch()
    os.truncate(dest, 32 * MiB)
    if kind == "fat":
        run("mkfs.vfat", "-F", "32", "-n", "WHOLE", dest)
    elif kind == "fat16":
        run("mkfs.vfat", "-F", "16", "-n", "WHOLE", dest)
    elif kind == "ntfs":
        run("mkntfs", "-F", "-Q", "-q", "-L", "whole", dest)
    elif kind == "exfat":
        run("mkfs.exfat", "-L", "whole", dest)
    else:
        raise ValueError(kind)
    # the independent witness: blkid finds the filesystem at offset 0 (it may also report an
    # empty "dos" table for exFAT, whose boot sector ends in 0x55AA with zeroed entries)
    found = run("blkid", "-p", "-o", "export", dest)
    expected = {"fat": "vfat", "fat16": "vfat", "ntfs": "ntfs", "exfat": "exfat"}[kind]
    if f"\nTYPE={expected}\n" not in f"\n{found}":
        raise RuntimeError(f"blkid does not see {expected} on the whole disk: {found}")


def whole_disk(kind: str) -> Path:
    """A filesystem made directly on the file: "fat", "fat16", "ntfs" or "exfat"."""
    return cached(f"whole-{kind}", kind, lambda d: _whole(d, kind))
