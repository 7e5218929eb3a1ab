"""LVM2 without device-mapper: the tools confined to a build's loop devices, logical volumes
written into the metadata text by hand, and their content written where ``lvs`` puts it.

``make_vg`` runs ``pvcreate``/``vgcreate`` on loop devices, ``vgcfgbackup``, adds the
logical-volume sections of a plan to the metadata text, ``vgcfgrestore``s it and returns the
tools' JSON reports; ``write_lvs`` then writes each LV's content at the offsets they report
(``pvs`` pe_start, ``lvs --segments`` seg_pe_ranges and stripe_size).

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
from itertools import pairwise
from pathlib import Path
from typing import Any

from tests.imagebuild.commands import loop_device, run
from tests.imagebuild.tree import block_content

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
        self.env = {"LVM_SYSTEM_DIR": str(sysdir), "LVM_SUPPRESS_FD_WARNINGS": "1"}

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


def make_vg(
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


def write_lvs(
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
