"""Builds (once, cached under .cache/bench) the image bench/api.py serves, with the real tools:
an uncompressed qcow2 holding an ext4 filesystem (whole disk) made by mke2fs -d from a
generated tree (``big.bin``: 256 MiB of random bytes; ``many/``: 2,000 files of 64 KiB),
checked by e2fsck; ``manifest.json`` holds big.bin's sha256."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
CACHE = ROOT / ".cache" / "bench"
VERSION = 1
BIG_MIB = 256
FILES = 2000
FILE_SIZE = 64 * 1024


def run(*cmd: str | os.PathLike[str]) -> str:
    return subprocess.run(
        [os.fspath(c) for c in cmd], check=True, capture_output=True, text=True
    ).stdout


def build() -> Path:
    out = CACHE / f"api-v{VERSION}"
    if (out / "manifest.json").exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="api.", dir=CACHE))
    try:
        src = tmp / "source"
        (src / "many").mkdir(parents=True)
        for i in range(FILES):
            (src / "many" / f"file{i:05d}.bin").write_bytes(os.urandom(FILE_SIZE))
        digest = hashlib.sha256()
        with (src / "big.bin").open("wb") as fh:
            for _ in range(BIG_MIB):
                block = os.urandom(MiB)
                digest.update(block)
                fh.write(block)
        raw = tmp / "fs.raw"
        with raw.open("wb") as fh:
            fh.truncate((BIG_MIB + 256) * MiB)
        run("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, raw)
        run("e2fsck", "-fn", raw)
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, tmp / "disk.qcow2")
        raw.unlink()
        (tmp / "manifest.json").write_text(json.dumps({"big_sha256": digest.hexdigest()}))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
