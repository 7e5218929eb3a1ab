#!/usr/bin/env python3
"""Build the demo backup repository from the committed source tree under demo/.

Output (in DEST, default .cache/demo-repo): ``web01/disk0-full.qcow2``, a full backup of a
GPT disk with an ext4 partition (demo/source/linux) and an NTFS partition
(demo/source/windows), and ``web01/disk0-incr1.qcow2``, an incremental on top of it holding
only the blocks that changed when demo/changes/ was applied and the paths in
demo/deleted.txt were removed. Built with real tools (sfdisk, mke2fs, mkntfs, ntfs-3g,
qemu-img, qemu-io), as root (loop devices). Verified before it is kept: the incremental,
converted back to raw by qemu-img, must equal the changed disk byte for byte.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo"
MiB = 1 << 20
PART = 12 * MiB
CHUNK = 64 * 1024
PARTITIONS = (  # GPT names and type GUIDs (Linux filesystem, Microsoft basic data)
    ("linux-root", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"),
    ("windows-data", "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"),
)


def run(*args: str | Path, **kw: object) -> str:
    return subprocess.run(
        [str(a) for a in args],
        check=True,
        capture_output=True,
        text=True,
        **kw,  # type: ignore[call-overload]
    ).stdout


def apply_changes(tree: Path) -> None:
    shutil.copytree(DEMO / "changes", tree, dirs_exist_ok=True, symlinks=True)
    for rel in (DEMO / "deleted.txt").read_text().split():
        (tree / rel).unlink()


def build_ext4(source: Path, image: Path) -> None:
    image.write_bytes(b"")
    run("truncate", "-s", str(PART), image)
    run(
        "mke2fs",
        "-q",
        "-t",
        "ext4",
        "-L",
        "root",
        "-U",
        "6f2a1c1e-0d3b-4a8e-9d4f-000000000001",
        "-E",
        "hash_seed=6f2a1c1e-0d3b-4a8e-9d4f-000000000002",
        "-d",
        source,
        image,
    )


def build_ntfs(source: Path, image: Path, work: Path) -> None:
    run("truncate", "-s", str(PART), image)
    run("mkntfs", "-q", "-F", "-Q", "-L", "data", image)
    mnt = work / "mnt-ntfs"
    mnt.mkdir(exist_ok=True)
    run("ntfs-3g", image, mnt)
    try:
        run("cp", "-r", "--preserve=timestamps", f"{source}/.", mnt)
    finally:
        run("umount", mnt)


def change_in_place(image: Path, kind: str, tree: Path, work: Path) -> None:
    """Apply demo/changes and deletions to a filesystem image through its own driver."""
    mnt = work / f"mnt-{kind}"
    mnt.mkdir(exist_ok=True)
    if kind == "ext4":
        run("mount", "-o", "loop", image, mnt)
    else:
        run("ntfs-3g", image, mnt)
    try:
        sub = "linux" if kind == "ext4" else "windows"
        changes = DEMO / "changes" / sub
        if changes.exists():
            run("cp", "-r", "--preserve=timestamps", f"{changes}/.", mnt)
        for rel in (DEMO / "deleted.txt").read_text().split():
            if rel.startswith(sub + "/"):
                (mnt / rel[len(sub) + 1 :]).unlink()
    finally:
        run("umount", mnt)


def assemble(disk: Path, parts: list[Path]) -> None:
    run("truncate", "-s", str(len(parts) * PART + 2 * MiB), disk)
    layout = "label: gpt\n" + "".join(
        f'size={PART // 512}, type={guid}, name="{name}"\n' for name, guid in PARTITIONS
    )
    subprocess.run(["sfdisk", "-q", str(disk)], input=layout, text=True, check=True)
    table = json.loads(run("sfdisk", "--json", disk))["partitiontable"]
    starts = [p["start"] for p in table["partitions"]]
    with disk.open("r+b") as out:
        for start, part in zip(starts, parts, strict=True):
            out.seek(start * 512)
            out.write(part.read_bytes())


def write_incremental(base_qcow: Path, old: Path, new: Path, out: Path, work: Path) -> int:
    """An overlay of base_qcow holding exactly the CHUNKs (one cluster each, compressed)
    where new differs from old."""
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", base_qcow.name, "-F", "qcow2", out)
    changed = 0
    with old.open("rb") as a, new.open("rb") as b:
        offset = 0
        while True:
            x, y = a.read(CHUNK), b.read(CHUNK)
            if not y:
                break
            if x != y:
                chunk = work / "chunk"
                chunk.write_bytes(y)
                run(
                    "qemu-io",
                    "-f",
                    "qcow2",
                    "-c",
                    f"write -c -s {chunk} {offset} {len(y)}",
                    out,
                    cwd=out.parent,
                )
                changed += len(y)
            offset += len(y)
    return changed


def main(dest: Path) -> None:
    repo = dest / "web01"
    if (repo / "disk0-incr1.qcow2").exists():
        print(f"demo repository already built: {dest}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ext4, ntfs = work / "p1.img", work / "p2.img"
        build_ext4(DEMO / "source" / "linux", ext4)
        build_ntfs(DEMO / "source" / "windows", ntfs, work)
        disk1 = work / "disk1.raw"
        assemble(disk1, [ext4, ntfs])
        change_in_place(ext4, "ext4", DEMO, work)
        change_in_place(ntfs, "ntfs", DEMO, work)
        disk2 = work / "disk2.raw"
        assemble(disk2, [ext4, ntfs])
        staging = work / "web01"
        staging.mkdir()
        full = staging / "disk0-full.qcow2"
        run("qemu-img", "convert", "-c", "-O", "qcow2", disk1, full)
        incr = staging / "disk0-incr1.qcow2"
        changed = write_incremental(full, disk1, disk2, incr, work)
        check = work / "check.raw"
        run("qemu-img", "convert", "-O", "raw", incr, check)
        if check.read_bytes() != disk2.read_bytes():
            sys.exit("build_demo: the incremental does not reproduce the changed disk")
        dest.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(repo, ignore_errors=True)
        shutil.copytree(staging, repo)
    sizes = {p.name: p.stat().st_size for p in sorted(repo.iterdir())}
    print(f"demo repository built in {dest}: {sizes} ({changed} bytes changed)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".cache" / "demo-repo")
