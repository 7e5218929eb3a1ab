"""What the benchmark image builders share: running a tool, a mount, a partition's bytes laid
into a disk, a random file, and a cached build directory made once (a loop device is
:func:`tests.imagebuild.commands.loop_device`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "bench"


def run(*cmd: str | os.PathLike[str], stdin: str | None = None) -> str:
    """A tool's standard output; its standard error's end in the error when it fails."""
    proc = subprocess.run(
        [os.fspath(c) for c in cmd], input=stdin, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


@contextlib.contextmanager
def mounted(argv: list[str | os.PathLike[str]], mnt: Path, fuse: bool) -> Iterator[Path]:
    """``argv`` (a mount command without its mount point) mounted on ``mnt``, made here."""
    mnt.mkdir(exist_ok=True)
    run(*argv, mnt)
    try:
        yield mnt
    finally:
        subprocess.run(["fusermount", "-u", mnt] if fuse else ["umount", mnt], check=False)
        subprocess.run(["umount", mnt], check=False, capture_output=True)
        mnt.rmdir()


def lay(image: Path, raw: Path, offset: int) -> None:
    """Write ``image`` into the disk ``raw`` at byte ``offset``, keeping holes."""
    run(
        "dd",
        f"if={image}",
        f"of={raw}",
        "bs=1M",
        f"seek={offset}",
        "oflag=seek_bytes",
        "conv=notrunc,sparse",
        "status=none",
    )


def random_file(path: Path, mib: int) -> str:
    """``mib`` MiB of random bytes written to ``path``; their sha256, taken as written."""
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        for _ in range(mib):
            block = os.urandom(1 << 20)
            digest.update(block)
            fh.write(block)
    return digest.hexdigest()


def build_once(name: str, key: list[Any], source: Path, build: Callable[[Path], None]) -> Path:
    """``CACHE/name-KEY``, made by ``build(tmp)`` when missing; the key hashes ``key`` and the
    builder's ``source`` file, so a changed recipe builds anew."""
    digest = hashlib.sha256(json.dumps([key, source.read_bytes().hex()]).encode()).hexdigest()
    out = CACHE / f"{name}-{digest[:16]}"
    if out.exists():  # renamed into place whole
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=CACHE))
    try:
        build(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
