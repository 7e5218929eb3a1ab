"""Builds (once, cached under .cache/bench) the images bench/s3.py reads from S3.

- ``chain100g/``: a 100 GiB-virtual disk (GPT, one ext4 partition made by mke2fs -d from a
  small tree) as ``base.qcow2`` and ten incrementals ``inc01`` .. ``inc10.qcow2``, each an
  overlay of the one before holding exactly the blocks that changed when debugfs wrote
  one more file into the filesystem (found by comparing the filesystem's data extents
  before and after). All sparse: the files hold tens of MiB, not 100 GiB.
  ``expected.json`` lists the root directory each layer should show (the tree's names).
- ``big1g/``: ``disk.qcow2``, an ext4 filesystem on the whole disk holding ``/big.bin``,
  1 GiB of random bytes; ``big.sha256`` its hash, taken from the source file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.imagebuild.bench_tools import build_once, random_file, run
from tests.imagebuild.fs_linux import data_ranges

MiB = 1 << 20
GiB = 1 << 30
VERSION = 1
DISK_SIZE = 100 * GiB
PART_START = MiB  # sfdisk's default first partition, LBA 2048
DEPTH = 10


def changed_runs(old: Path, new: Path, block: int = 65536) -> list[tuple[int, bytes]]:
    """(offset, new bytes) of each run of ``block``-sized blocks that differ, looking only
    at the data regions of either file (both are sparse copies of one filesystem)."""
    regions = sorted({*data_ranges(old), *data_ranges(new)})
    runs: list[tuple[int, bytes]] = []
    with old.open("rb") as a, new.open("rb") as b:
        for start, end in regions:
            pos = start - start % block
            while pos < end:
                x, y = os.pread(a.fileno(), block, pos), os.pread(b.fileno(), block, pos)
                if x != y:
                    if runs and runs[-1][0] + len(runs[-1][1]) == pos:
                        runs[-1] = (runs[-1][0], runs[-1][1] + y)
                    elif not runs or runs[-1][0] + len(runs[-1][1]) < pos:
                        runs.append((pos, y))
                pos += block
    return runs


def _tree(root: Path) -> list[str]:
    for d in ("etc", "home/alice/documents", "var/log", "daily", "srv/www"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "hostname").write_text("vm-100g\n")
    for i in range(200):
        data = hashlib.sha256(b"doc%d" % i).digest() * (64 * (i % 7 + 1))
        (root / "home/alice/documents" / f"report-{i:03d}.txt").write_bytes(data)
    (root / "srv/www/index.html").write_text("<html>hello</html>\n")
    (root / "README").write_text("a 100 GiB disk with a small tree\n")
    return sorted(p.name for p in root.iterdir())


def _build_chain(out: Path) -> None:
    work = out / "work"
    work.mkdir()
    names = _tree(work / "tree")
    fs = work / "fs.raw"  # the filesystem alone; placed at PART_START in the disk
    fs_size = DISK_SIZE - PART_START - MiB  # room for the backup GPT at the end
    with fs.open("wb") as fh:
        fh.truncate(fs_size)
    run(
        "mke2fs", "-q", "-F", "-t", "ext4", "-L", "big-root",
        "-E", "lazy_itable_init=1,lazy_journal_init=1", "-d", work / "tree", fs,
    )  # fmt: skip
    disk = work / "disk.raw"
    with disk.open("wb") as fh:
        fh.truncate(DISK_SIZE)
    run("sfdisk", "-q", disk, stdin=f"label: gpt\nstart=2048, size={fs_size // 512}, type=linux\n")
    with fs.open("rb") as fin, disk.open("r+b") as dst:
        for start, end in data_ranges(fs):
            os.copy_file_range(fin.fileno(), dst.fileno(), end - start, start, PART_START + start)
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", disk, out / "base.qcow2")
    disk.unlink()
    below = "base.qcow2"
    expected = {"base.qcow2": names}
    for i in range(1, DEPTH + 1):
        before = work / "before.raw"
        run("cp", "--sparse=always", fs, before)
        src = work / f"daily-{i:02d}.log"
        src.write_bytes(hashlib.sha256(b"daily%d" % i).digest() * 2048)  # 64 KiB
        run("debugfs", "-w", "-R", f"write {src} /daily/{i:02d}.log", fs)
        name = f"inc{i:02d}.qcow2"
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", below, "-F", "qcow2", out / name)
        cmds: list[str] = []
        for j, (offset, data) in enumerate(changed_runs(before, fs)):
            chunk = work / f"w{j}"
            chunk.write_bytes(data)
            cmds += ["-c", f"write -s {chunk} {PART_START + offset} {len(data)}"]
        if not cmds:
            raise RuntimeError(f"debugfs changed nothing for {name}")
        run("qemu-io", "-f", "qcow2", *cmds, out / name)
        for chunk in work.glob("w*"):
            chunk.unlink()
        expected[name] = names
        below = name
    (out / "expected.json").write_text(json.dumps({"root": names, "top": below}))
    # an independent reader: debugfs lists the last state's /daily
    listing = run("debugfs", "-R", "ls -l /daily", fs)
    if f"{DEPTH:02d}.log" not in listing:
        raise RuntimeError("the last incremental's file is missing from the filesystem")
    shutil.rmtree(work)


def chain100g() -> Path:
    return build_once("s3-chain100g", [VERSION], Path(__file__), _build_chain)


def _build_big(out: Path) -> None:
    tree = out / "tree"
    tree.mkdir()
    sha256 = random_file(tree / "big.bin", GiB // MiB)
    fs = out / "fs.raw"
    with fs.open("wb") as fh:
        fh.truncate(GiB + 128 * MiB)
    run("mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, fs)
    got = subprocess.run(
        ["debugfs", "-R", "cat /big.bin", str(fs)], capture_output=True, check=True
    ).stdout
    if hashlib.sha256(got).hexdigest() != sha256:
        raise RuntimeError("mke2fs -d wrote big.bin wrongly")
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", fs, out / "disk.qcow2")
    (out / "big.sha256").write_text(sha256)
    fs.unlink()
    shutil.rmtree(tree)


def big1g() -> Path:
    return build_once("s3-big1g", [VERSION], Path(__file__), _build_big)


if __name__ == "__main__":
    import time

    t = time.perf_counter()
    print(chain100g(), f"{time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    print(big1g(), f"{time.perf_counter() - t:.1f} s")
