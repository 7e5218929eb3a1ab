"""XFS images whose inode B+trees have two levels, for fs/xfs_changes.py.

Per variant, two states of one filesystem: ``a.img`` with 12,000 files in 120 directories,
and ``b.img``, a copy of it in which five files were chmod-ed. v5 (with sparse inode chunks):
both made through a kernel loop mount (``noatime``); v4 (no CRCs), which this kernel no
longer mounts: populated at mkfs time from a protofile, the modes written by ``xfs_db -x``.
1 KiB blocks keep the inode B+tree's leaves small, so it needs a second level. Beside them,
``facts.json`` holds what the kernel and ``xfs_db`` say, the expected values of the tests:
the inode number of every path (``st_ino``; on v4 ``xfs_db``'s ``ls``), the chmod-ed files'
inode numbers, and per allocation group ``xfs_db``'s ``agi`` count (inodes allocated in
chunks) and inode B+tree level. The build checks that both AGs' trees have two levels and
runs ``xfs_repair -n`` on both states.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from tests.imagebuild.cache import cached
from tests.imagebuild.fs_linux import loop_mount, run

DIRS, PER_DIR = 120, 100
CHMODDED = ("d00/f0000", "d07/f0042", "d30/f0099", "d59/f0001", "d59/f0002")
VARIANTS = {
    "v5": ["-m", "crc=1", "-i", "sparse=1"],
    "v4": ["-m", "crc=0"],
}


def _agi(raw: Path, ags: int) -> list[dict[str, int]]:
    out = []
    for agno in range(ags):
        shown = run("xfs_db", "-r", "-c", f"agi {agno}", "-c", "p count level", raw)
        values = dict(re.findall(r"(\w+) = (\d+)", shown))
        out.append({"count": int(values["count"]), "level": int(values["level"])})
    return out


def _names() -> list[tuple[str, list[str]]]:
    return [(f"d{d:02d}", [f"f{f:04d}" for f in range(PER_DIR)]) for d in range(DIRS)]


def _kernel_states(a: Path, b: Path) -> dict[str, int]:
    run("mkfs.xfs", "-q", "-f", "-b", "size=1024", "-d", "agcount=2", *VARIANTS["v5"], a)
    with loop_mount(a, "rw,noatime") as mnt:
        for d, files in _names():
            (mnt / d).mkdir()
            for f in files:
                (mnt / d / f).write_bytes(f.encode())
    shutil.copyfile(a, b)
    inodes: dict[str, int] = {}
    with loop_mount(b, "rw,noatime") as mnt:
        for rel in CHMODDED:
            (mnt / rel).chmod(0o600)
        for root, dirs, files in os.walk(mnt):
            for name in dirs + files:
                path = Path(root) / name
                inodes[str(path.relative_to(mnt))] = path.lstat().st_ino
        inodes[""] = mnt.stat().st_ino
    return inodes


def _tool_states(a: Path, b: Path) -> dict[str, int]:
    proto = a.parent / "proto.txt"
    content = a.parent / "content"
    content.write_bytes(b"x")
    lines = ["fr", "0 0", "d--755 0 0"]
    for d, files in _names():
        lines += [f"{d} d--755 0 0", *(f"{f} ---644 0 0 {content}" for f in files), "$"]
    proto.write_text("\n".join([*lines, "$", ""]))
    run(
        "mkfs.xfs",
        "-q",
        "-f",
        "-b",
        "size=1024",
        "-d",
        "agcount=2",
        *VARIANTS["v4"],
        "-p",
        proto,
        a,
    )
    proto.unlink()
    content.unlink()
    shutil.copyfile(a, b)
    inodes: dict[str, int] = {}
    for d, _ in [("", []), *_names()]:
        for line in run("xfs_db", "-r", "-c", f"ls /{d}", b).splitlines()[1:]:
            fields = line.split()  # dir offset, inode, kind, hash, name length, name, (good)
            if fields[5] == ".":
                inodes[d] = int(fields[1])
            elif fields[5] != "..":
                inodes[f"{d}/{fields[5]}".lstrip("/")] = int(fields[1])
    for rel in CHMODDED:
        run("xfs_db", "-x", "-c", f"inode {inodes[rel]}", "-c", "write core.mode 0100600", b)
    return inodes


def _build(out: Path, variant: str) -> None:
    out.mkdir()
    a, b = out / "a.img", out / "b.img"
    run("truncate", "-s", "320M", a)
    inodes = (_kernel_states if variant == "v5" else _tool_states)(a, b)
    facts: dict[str, Any] = {"inodes": inodes}
    facts["chmodded"] = sorted(inodes[rel] for rel in CHMODDED)
    for img in (a, b):
        run("xfs_repair", "-n", "-f", img)
    facts["agi"] = _agi(a, 2)
    if min(ag["level"] for ag in facts["agi"]) < 2:
        raise AssertionError(f"an inode B+tree of one level: {facts['agi']}")
    (out / "facts.json").write_text(json.dumps(facts))


def xfs_inode_chunks(variant: str) -> Path:
    """The cached directory of ``variant`` (v5 or v4): a.img, b.img and facts.json."""
    recipe = {"variant": VARIANTS[variant], "dirs": DIRS, "per_dir": PER_DIR, "chmod": CHMODDED}
    return cached(f"xfs-inode-chunks-{variant}", recipe, lambda o: _build(o, variant), "d")
