"""Builds (once, cached under .cache/bench) the image bench/api.py serves, with the real tools:
an uncompressed qcow2 holding an ext4 filesystem (whole disk) made by mke2fs -d from a
generated tree (``big.bin``: 256 MiB of random bytes; ``many/``: 2,000 files of 64 KiB),
checked by e2fsck; ``manifest.json`` holds big.bin's sha256."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.imagebuild.bench_tools import build_once, random_file, run

MiB = 1 << 20
VERSION = 1
BIG_MIB = 256
FILES = 2000
FILE_SIZE = 64 * 1024


def build() -> Path:
    return build_once("api", [VERSION], Path(__file__), _build)


def _build(tmp: Path) -> None:
    src = tmp / "source"
    (src / "many").mkdir(parents=True)
    for i in range(FILES):
        (src / "many" / f"file{i:05d}.bin").write_bytes(os.urandom(FILE_SIZE))
    big_sha256 = random_file(src / "big.bin", BIG_MIB)
    raw = tmp / "fs.raw"
    with raw.open("wb") as fh:
        fh.truncate((BIG_MIB + 256) * MiB)
    run("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, raw)
    run("e2fsck", "-fn", raw)
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, tmp / "disk.qcow2")
    raw.unlink()
    (tmp / "manifest.json").write_text(json.dumps({"big_sha256": big_sha256}))
