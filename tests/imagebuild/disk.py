"""Partitioned test disks: GPT and MBR tables made by sfdisk, whole-disk filesystems, LVM2.

- ``build_disk(table, partitions)``: a raw disk with a GPT or MBR table (sfdisk script) and
  filesystem images (raw files built by other builders) laid into the partitions. MBR disks
  with more than four partitions get three primaries and an extended partition holding the
  rest as logical partitions.
- ``gpt_disk``, ``gpt4k_disk``, ``mbr_disk``: tables with names, an empty GPT slot, logical
  partitions, 4096-byte logical sectors (sfdisk on a ``losetup --sector-size 4096`` device).
- ``whole_disk(kind)``: FAT, NTFS or exFAT made directly on the file (no table).
- ``lvm_gpt_disk``, ``lvm_mbr_disk``, ``lvm_whole_disk``: LVM2 without device-mapper.
  ``pvcreate``/``vgcreate`` on loop devices, ``vgcfgbackup``, logical-volume sections
  written into the metadata text by hand, ``vgcfgrestore``, then each LV's content written
  at the offsets the LVM tools report (``pvs`` pe_start, ``lvs --segments`` seg_pe_ranges
  and stripe_size). The tools' JSON reports are saved beside the image as the tests'
  expected values.

LVM runs with its own ``LVM_SYSTEM_DIR`` (a temporary ``lvm.conf``) whose filter accepts only
the loop devices of this build, with no locking, no backups, no hints and no udev: the host's
disks, /etc/lvm and /run/lvm are never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from tests.imagebuild.cache import cached
from tests.imagebuild.tree import EXT4, MiB, block_content, make_tree

PartitionSpec = tuple[int, str, str | None, Path | None]  # size, type, name, fs image

GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_EFI = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_MSDATA = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
GPT_LVM = "E6D6D379-F507-44C2-A23C-238F2A3DF928"


def run(*args: str | Path, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


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


def _table_disk(dest: Path, script: str, size: int) -> None:
    dest.touch()
    os.truncate(dest, size)
    run("sfdisk", "-q", dest, stdin=script)


def gpt_disk() -> Path:
    """GPT: EFI, Linux, Microsoft data (unicode name, slot 4) and swap (slot 3, unnamed)."""
    return cached("gpt", GPT_SCRIPT, lambda d: _table_disk(d, GPT_SCRIPT, 40 * MiB))


def mbr_disk() -> Path:
    """MBR: three primaries (one bootable) and an extended partition with three logicals."""
    return cached("mbr", MBR_SCRIPT, lambda d: _table_disk(d, MBR_SCRIPT, 64 * MiB))


@contextlib.contextmanager
def loop_device(path: Path, *options: str) -> Iterator[str]:
    dev = run("losetup", "-f", "--show", *options, path).strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


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


# --- LVM2 without device-mapper -------------------------------------------------------------

LVM_CONF = """\
devices {{
  filter = [ {accept}"r|.*|" ]
  global_filter = [ {accept}"r|.*|" ]
  obtain_device_list_from_udev = 0
  external_device_info_source = "none"
  use_devicesfile = 0
  hints = "none"
  scan = [ "/dev" ]
}}
global {{
  locking_type = 0
  use_lvmlockd = 0
}}
activation {{
  udev_sync = 0
  udev_rules = 0
  monitoring = 0
}}
backup {{
  backup = 0
  archive = 0
}}
"""


class Lvm:
    """LVM commands confined to some loop devices, with a throwaway system directory."""

    def __init__(self, sysdir: Path, devices: list[str]) -> None:
        accept = "".join(f'"a|^{re.escape(d)}$|", ' for d in devices)
        sysdir.mkdir(parents=True, exist_ok=True)
        (sysdir / "lvm.conf").write_text(LVM_CONF.format(accept=accept))
        self.env = dict(os.environ, LVM_SYSTEM_DIR=str(sysdir), LVM_SUPPRESS_FD_WARNINGS="1")

    def __call__(self, *args: str | Path) -> str:
        return run(*args, env=self.env)

    def report(self, *args: str) -> list[dict[str, str]]:
        """An ``lvs``/``pvs`` JSON report's rows (stderr holds device-mapper complaints)."""
        out = json.loads(self(*args, "--units", "b", "--nosuffix", "--reportformat", "json"))
        rows: list[dict[str, str]] = next(iter(out["report"][0].values()))
        return rows


def _pv_names(backup_text: str) -> dict[str, str]:
    """Loop device -> pvN, from the ``device = "..."`` hints in a vgcfgbackup file."""
    found = re.findall(r'(pv\d+) \{\s*id = "[^"]*"\s*device = "([^"]*)"', backup_text)
    return {dev: name for name, dev in found}


def lv_section(
    name: str, uuid: str, segments: list[tuple[int, int, int, list[tuple[str, int]]]]
) -> str:
    """A logical_volumes entry; each segment is (start_extent, extent_count, stripe_size in
    sectors (0 for linear), [(pvN, first pe), ...])."""
    out = [
        f"\t\t{name} {{",
        f'\t\t\tid = "{uuid}"',
        '\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]',
        "\t\t\tflags = []",
        f"\t\t\tsegment_count = {len(segments)}",
    ]
    for i, (start, count, stripe_size, stripes) in enumerate(segments, start=1):
        out += [
            f"\t\t\tsegment{i} {{",
            f"\t\t\t\tstart_extent = {start}",
            f"\t\t\t\textent_count = {count}",
            '\t\t\t\ttype = "striped"',
            f"\t\t\t\tstripe_count = {len(stripes)}",
        ]
        if len(stripes) > 1:
            out.append(f"\t\t\t\tstripe_size = {stripe_size}")
        out.append("\t\t\t\tstripes = [")
        out.append(",\n".join(f'\t\t\t\t\t"{pv}", {pe}' for pv, pe in stripes))
        out += ["\t\t\t\t]", "\t\t\t}"]
    out.append("\t\t}")
    return "\n".join(out)


def _add_lvs(backup_text: str, sections: list[str], tags: list[str]) -> str:
    body = "\n\tlogical_volumes {\n\n" + "\n\n".join(sections) + "\n\t}\n"
    if tags:  # VG tags pad the text, so that a few writes wrap the circular metadata buffer
        body += "\ttags = [" + ", ".join(f'"{t}"' for t in tags) + "]\n"
    end = backup_text.rindex("}")  # the VG section's closing brace
    return backup_text[:end] + body + backup_text[end:]


def metadata_wraps(pv_head: bytes) -> bool:
    """Does the committed metadata text run past the end of the first metadata area (LVM2
    lib/format_text/layout.h: mda_header at 4096, raw_locn[0] after magic/version/start/size)?"""
    _crc, magic, _ver, _start, size, offset, length = struct.unpack_from(
        "<I16sIQQQQ", pv_head, 4096
    )
    if magic != b" LVM2 x[5A%r0N*>":
        raise RuntimeError("no metadata area at 4096")
    return bool(offset + length > size)


def write_lv(
    disk: Path, pv_offsets: dict[str, int], lv_rows: list[dict[str, str]], extent: int, data: bytes
) -> None:
    """Write an LV's ``data`` where ``lvs --segments`` says its extents are.

    ``pv_offsets`` maps each device in seg_pe_ranges to the disk offset of its first
    physical extent (partition offset + pe_start). Striped segments are filled chunk by
    chunk, round robin over the stripes, as dm-stripe maps them.
    """
    with disk.open("r+b") as fh:
        for seg in lv_rows:
            start = int(seg["seg_start"])
            seg_size = int(seg["seg_size"])
            stripes = []
            for rng in seg["seg_pe_ranges"].split():
                dev, pes = rng.rsplit(":", 1)
                first = int(pes.split("-")[0])
                stripes.append(pv_offsets[dev] + first * extent)
            chunk = int(seg["stripe_size"]) if len(stripes) > 1 else seg_size
            for n, pos in enumerate(range(0, seg_size, chunk)):
                row, stripe = divmod(n, len(stripes))
                piece = data[start + pos : start + pos + chunk]
                os.pwrite(fh.fileno(), piece, stripes[stripe] + row * chunk)


def lv_content(name: str, size: int) -> bytes:
    """The distinctive content written into a test LV."""
    return block_content(f"lv-{name}", size)


SMALL_TREE = replace(EXT4, big_sparse=False, long_names=False, many=0)


def _ext4_image(path: Path, size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree = make_tree(Path(tmp) / "tree", SMALL_TREE)
        path.touch()
        os.truncate(path, size)
        run("mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, "-L", "lvroot", path)
    run("e2fsck", "-fn", path)


def _lv_uuid(name: str) -> str:
    raw = hashlib.sha256(name.encode()).hexdigest()[:32]
    cuts = (0, 6, 10, 14, 18, 22, 26, 32)
    return "-".join(raw[a:b] for a, b in pairwise(cuts))


LvPlan = dict[str, list[tuple[int, int, int, list[tuple[str, int]]]]]  # LV -> segments (pv keys)

LV_REPORT = (
    "vg_name,lv_name,lv_uuid,lv_size,segtype,seg_start,seg_size,seg_start_pe,seg_pe_ranges,"
    "stripes,stripe_size"
)
PV_REPORT = "pv_name,pv_uuid,vg_name,pe_start,pv_size,dev_size,vg_extent_size"


def _make_vg(
    tmp: Path,
    vg: str,
    devices: dict[str, tuple[Path, tuple[str, ...]]],
    plan: LvPlan,
    pvcreate_args: tuple[str, ...] = (),
    tags: list[str] | None = None,
    wrap: bool = False,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Create VG ``vg`` on loop devices of ``devices`` (key -> (file, losetup options)),
    add the LVs of ``plan`` (stripes name devices by key) and return the LVM tools' reports
    and the device -> key map."""
    with contextlib.ExitStack() as stack:
        loops = {k: stack.enter_context(loop_device(f, *o)) for k, (f, o) in devices.items()}
        lvm = Lvm(tmp / "lvm", list(loops.values()))
        lvm("pvcreate", "-q", *pvcreate_args, *loops.values())
        lvm("vgcreate", "-q", "-s", "1m", vg, *loops.values())
        lvm("vgcfgbackup", "-q", "-f", tmp / "vg.txt", vg)
        text = (tmp / "vg.txt").read_text()
        names = _pv_names(text)
        pv_of = {k: names[dev] for k, dev in loops.items()}
        sections = [
            lv_section(
                lv,
                _lv_uuid(lv),
                [(s, c, z, [(pv_of[k], pe) for k, pe in st]) for s, c, z, st in segs],
            )
            for lv, segs in plan.items()
        ]
        (tmp / "vg-lvs.txt").write_text(_add_lvs(text, sections, tags or []))
        for _ in range(20):  # each restore writes the metadata once more, circularly
            lvm("vgcfgrestore", "-q", "-f", tmp / "vg-lvs.txt", vg)
            if not wrap or metadata_wraps(_read_head(devices)):
                break
        else:
            raise RuntimeError("the metadata text never wrapped around its area")
        report = {
            "lvs": lvm.report("lvs", "--segments", "-o", LV_REPORT, vg),
            "pvs": lvm.report("pvs", "-o", PV_REPORT),
        }
    got = {r["lv_name"] for r in report["lvs"]}
    if got != set(plan):
        raise RuntimeError(f"lvs reports {got}, expected {set(plan)}")
    return report, {dev: k for k, dev in loops.items()}


def _read_head(devices: dict[str, tuple[Path, tuple[str, ...]]]) -> bytes:
    path, options = next(iter(devices.values()))
    offset = int(options[options.index("-o") + 1]) if "-o" in options else 0
    with path.open("rb") as fh:
        return os.pread(fh.fileno(), 8192, offset)


def _write_lvs(
    img: Path,
    report: dict[str, Any],
    dev_key: dict[str, str],
    key_offset: dict[str, int],
    contents: dict[str, bytes],
) -> None:
    pv_offsets = {
        r["pv_name"]: key_offset[dev_key[r["pv_name"]]] + int(r["pe_start"])
        for r in report["pvs"]
        if dev_key[r["pv_name"]] in key_offset
    }
    extent = int(report["pvs"][0]["vg_extent_size"])
    for lv, data in contents.items():
        rows = [r for r in report["lvs"] if r["lv_name"] == lv]
        if int(rows[0]["lv_size"]) != len(data):
            raise RuntimeError(f"LV {lv} is {rows[0]['lv_size']} bytes, content {len(data)}")
        write_lv(img, pv_offsets, rows, extent, data)


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
    _table_disk(img, LVM_GPT_SCRIPT, 68 * MiB)
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
        report, dev_key = _make_vg(tmp, "vg0", devices, LVM_GPT_PLAN)  # type: ignore[arg-type]
    contents = {"root": root.read_bytes()}
    for lv in ("split", "striped", "mixed"):
        size = sum(c for _s, c, _z, _st in LVM_GPT_PLAN[lv]) * MiB
        contents[lv] = lv_content(lv, size)
    _write_lvs(img, report, dev_key, key_offset, contents)
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
        report, dev_key = _make_vg(
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
    _write_lvs(img, report, dev_key, {"d": 0}, contents)
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
    _table_disk(img, LVM_MBR_SCRIPT, 32 * MiB)
    (p5,) = [p for p in sfdisk_json(img)["partitions"] if p["node"].endswith("img5")]
    offset = p5["start"] * 512
    with tempfile.TemporaryDirectory() as t:
        device = (img, ("-o", str(offset), "--sizelimit", str(p5["size"] * 512)))
        report, dev_key = _make_vg(Path(t), "vgmbr", {"m": device}, LVM_MBR_PLAN)
    contents = {
        lv: lv_content(lv, sum(c for _s, c, _z, _st in segs) * MiB)
        for lv, segs in LVM_MBR_PLAN.items()
    }
    _write_lvs(img, report, dev_key, {"m": offset}, contents)
    report["devices"] = dev_key
    (dest / "lvm.json").write_text(json.dumps(report, indent=1))


def lvm_mbr_disk() -> Path:
    """A directory: ``disk.img`` (MBR: p1, an extended p2, a PV in logical p5 of VG "vgmbr",
    p6) and ``lvm.json``."""
    return cached("lvm-mbr", [LVM_MBR_SCRIPT, LVM_MBR_PLAN], _lvm_mbr, suffix="d")
