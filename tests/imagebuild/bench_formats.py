"""The disks bench/formats.py reads, built in its temporary directory with the real tools:
random data for throughput, and a 64 MiB GPT disk with one ext4 partition (200 files, made by
mke2fs -d), each converted by qemu-img into every format and subformat of ``FORMATS``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MiB = 1 << 20


def run(*args: object) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


FORMATS = [
    ("qcow2", "qcow2", []),
    ("vmdk", "monolithicSparse", ["subformat=monolithicSparse"]),
    ("vmdk", "streamOptimized", ["subformat=streamOptimized"]),
    ("vmdk", "twoGbMaxExtentSparse", ["subformat=twoGbMaxExtentSparse"]),
    ("vmdk", "monolithicFlat", ["subformat=monolithicFlat"]),
    ("vpc", "dynamic", ["subformat=dynamic"]),
    ("vpc", "fixed", ["subformat=fixed"]),
    ("vhdx", "dynamic", ["subformat=dynamic"]),
    ("vhdx", "fixed", ["subformat=fixed"]),
]
EXT = {"qcow2": "qcow2", "vmdk": "vmdk", "vpc": "vhd", "vhdx": "vhdx"}


def data_disk(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        for _ in range(size // 65536):
            fh.write(os.urandom(16384) + bytes(49152))


def ext4_disk(work: Path) -> Path:
    tree = work / "tree"
    for d in range(10):
        (tree / f"d{d}").mkdir(parents=True)
        for f in range(20):
            (tree / f"d{d}" / f"f{f}.txt").write_bytes(os.urandom(3000))
    fs, raw = work / "fs.ext4", work / "ext4.raw"
    run("mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, fs, "62M")
    with raw.open("wb") as fh:
        fh.truncate(64 * MiB)
    subprocess.run(
        ["sfdisk", "-q", str(raw)],
        input="label: gpt\nstart=2048, type=linux\n",
        text=True,
        check=True,
    )
    run("dd", f"if={fs}", f"of={raw}", "bs=1M", "seek=1", "conv=notrunc", "status=none")
    return raw


def convert(raw: Path, out: Path, fmt: str, options: list[str]) -> Path:
    out.mkdir()
    image = out / f"disk.{EXT[fmt]}"
    opts = ["-o", ",".join(options)] if options else []
    run("qemu-img", "convert", "-f", "raw", "-O", fmt, *opts, raw, image)
    return image
