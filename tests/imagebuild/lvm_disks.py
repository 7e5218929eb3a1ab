"""Test disks holding LVM2 volume groups (see :mod:`tests.imagebuild.lvm_tools`), cached.

- ``lvm_gpt_disk``: two PVs in GPT partitions and a third on another disk, left behind;
  linear, split, striped and mixed LVs, one holding an ext4 filesystem.
- ``lvm_mbr_disk``: a PV in a logical partition of an MBR table.
- ``lvm_whole_disk``: one PV on the whole disk, its metadata text wrapped around its area.

Each is a directory with ``disk.img`` and ``lvm.json``, the LVM tools' reports saved as the
tests' expected values.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.commands import run
from tests.imagebuild.disk import GPT_LINUX, GPT_LVM, sfdisk_json, table_disk
from tests.imagebuild.lvm_tools import LvPlan, lv_content, make_vg, write_lvs
from tests.imagebuild.tree import EXT4, MiB, make_tree

SMALL_TREE = replace(EXT4, big_sparse=False, long_names=False, many=0)


def _ext4_image(path: Path, size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree = make_tree(Path(tmp) / "tree", SMALL_TREE)
        path.touch()
        os.truncate(path, size)
        run("mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, "-L", "lvroot", path)
    run("e2fsck", "-fn", path)


LVM_GPT_PLAN: LvPlan = {
    # pv "a" (p2, 32 MiB: 31 extents) and "b" (p3, 24 MiB: 23 extents) are on the disk;
    # "x" is a PV on another disk, left behind.
    "root": [(0, 12, 0, [("a", 0)])],
    "split": [(0, 4, 0, [("a", 20)]), (4, 3, 0, [("a", 14)])],
    "striped": [(0, 8, 128, [("b", 0), ("a", 24)])],
    "mixed": [(0, 2, 0, [("b", 4)]), (2, 4, 32, [("a", 28), ("b", 6)])],
    "away": [(0, 2, 0, [("x", 0)])],
    "partial": [(0, 1, 0, [("a", 30)]), (1, 1, 0, [("x", 2)])],
}

LVM_GPT_SCRIPT = f"""label: gpt
size=8MiB, type={GPT_LINUX}, name="boot"
size=32MiB, type={GPT_LVM}, name="pv-a"
size=24MiB, type={GPT_LVM}, name="pv-b"
"""


def _lvm_gpt(dest: Path) -> None:
    dest.mkdir()
    img = dest / "disk.img"
    table_disk(img, LVM_GPT_SCRIPT, 68 * MiB)
    parts = {p["name"]: p for p in sfdisk_json(img)["partitions"]}
    key_offset = {"a": parts["pv-a"]["start"] * 512, "b": parts["pv-b"]["start"] * 512}
    root = dest / "root.ext4"
    _ext4_image(root, 12 * MiB)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        other = tmp / "other.img"
        other.touch()
        os.truncate(other, 16 * MiB)
        devices = {
            k: (img, ("-o", str(key_offset[k]), "--sizelimit", str(parts[n]["size"] * 512)))
            for k, n in (("a", "pv-a"), ("b", "pv-b"))
        }
        devices["x"] = (other, ())  # type: ignore[assignment]
        report, dev_key = make_vg(tmp, "vg0", devices, LVM_GPT_PLAN)  # type: ignore[arg-type]
    contents = {"root": root.read_bytes()}
    for lv in ("split", "striped", "mixed"):
        size = sum(c for _s, c, _z, _st in LVM_GPT_PLAN[lv]) * MiB
        contents[lv] = lv_content(lv, size)
    write_lvs(img, report, dev_key, key_offset, contents)
    report["devices"] = dev_key
    (dest / "lvm.json").write_text(json.dumps(report, indent=1))


def lvm_gpt_disk() -> Path:
    """A directory: ``disk.img`` (GPT: p1 boot, p2 and p3 LVM PVs of VG "vg0"), ``root.ext4``
    (the filesystem written into LV root) and ``lvm.json`` (the LVM tools' reports, taken
    while the third PV, on another disk, was still attached)."""
    return cached("lvm-gpt", [LVM_GPT_SCRIPT, LVM_GPT_PLAN], _lvm_gpt, suffix="d")


LVM_WHOLE_PLAN: LvPlan = {
    "data": [(0, 4, 0, [("d", 10)]), (4, 5, 0, [("d", 0)]), (9, 2, 0, [("d", 15)])],
    "flat": [(0, 5, 0, [("d", 5)])],
}


def _lvm_whole(dest: Path) -> None:
    dest.mkdir()
    img = dest / "disk.img"
    img.touch()
    os.truncate(img, 24 * MiB)
    with tempfile.TemporaryDirectory() as t:
        report, dev_key = make_vg(
            Path(t),
            "vgdisk",
            {"d": (img, ())},
            LVM_WHOLE_PLAN,
            pvcreate_args=("--dataalignment", "64k", "--metadatasize", "32k"),
            tags=[f"pad{i}-" + "x" * 1000 for i in range(8)],
            wrap=True,
        )
    contents = {
        lv: lv_content(lv, sum(c for _s, c, _z, _st in segs) * MiB)
        for lv, segs in LVM_WHOLE_PLAN.items()
    }
    write_lvs(img, report, dev_key, {"d": 0}, contents)
    report["devices"] = dev_key
    (dest / "lvm.json").write_text(json.dumps(report, indent=1))


def lvm_whole_disk() -> Path:
    """A directory: ``disk.img`` (one PV on the whole disk, VG "vgdisk", a small metadata area
    written several times so its text wraps around) and ``lvm.json``."""
    return cached("lvm-whole", LVM_WHOLE_PLAN, _lvm_whole, suffix="d")


LVM_MBR_PLAN: LvPlan = {
    "lv": [(0, 6, 0, [("m", 2)])],
    "two": [(0, 2, 0, [("m", 10)]), (2, 2, 0, [("m", 0)])],
}

LVM_MBR_SCRIPT = """label: dos
size=8MiB, type=83
type=5
size=16MiB, type=8e
size=4MiB, type=83
"""


def _lvm_mbr(dest: Path) -> None:
    dest.mkdir()
    img = dest / "disk.img"
    table_disk(img, LVM_MBR_SCRIPT, 32 * MiB)
    (p5,) = [p for p in sfdisk_json(img)["partitions"] if p["node"].endswith("img5")]
    offset = p5["start"] * 512
    with tempfile.TemporaryDirectory() as t:
        device = (img, ("-o", str(offset), "--sizelimit", str(p5["size"] * 512)))
        report, dev_key = make_vg(Path(t), "vgmbr", {"m": device}, LVM_MBR_PLAN)
    contents = {
        lv: lv_content(lv, sum(c for _s, c, _z, _st in segs) * MiB)
        for lv, segs in LVM_MBR_PLAN.items()
    }
    write_lvs(img, report, dev_key, {"m": offset}, contents)
    report["devices"] = dev_key
    (dest / "lvm.json").write_text(json.dumps(report, indent=1))


def lvm_mbr_disk() -> Path:
    """A directory: ``disk.img`` (MBR: p1, an extended p2, a PV in logical p5 of VG "vgmbr",
    p6) and ``lvm.json``."""
    return cached("lvm-mbr", [LVM_MBR_SCRIPT, LVM_MBR_PLAN], _lvm_mbr, suffix="d")
