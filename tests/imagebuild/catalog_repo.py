"""Backup repositories for catalog and session tests, made by qemu-img from a small ext4.

The ext4 filesystem is built once (``mke2fs -d`` from a two-file tree, verified with
``debugfs``) and cached; each test copies it into a repository of its own and adds
incremental overlays with ``qemu-img create -b`` (relative backing names, as backup
products write them). Expected sizes and backing files come from ``qemu-img info``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.imagebuild.cache import cached
from tests.imagebuild.sparse import copy_sparse

FILES = {"hello.txt": b"hello from the backup\n", "docs/readme.md": b"# readme\n" * 50}
FS_SIZE = 8 << 20


def run(*args: object) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout


def ext4_qcow2() -> Path:
    """A QCOW2 image of an ext4 filesystem on the whole disk holding FILES."""

    def build(tmp: Path) -> None:
        work = tmp.with_name(tmp.name + ".work")
        shutil.rmtree(work, ignore_errors=True)
        tree = work / "tree"
        for name, data in FILES.items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes(data)
        raw = work / "fs.raw"
        try:
            run("truncate", "-s", FS_SIZE, raw)
            run("mke2fs", "-q", "-F", "-t", "ext4", "-L", "catalog", "-d", tree, raw)
            for name, data in FILES.items():  # verify against the tree before caching
                got = subprocess.run(
                    ["debugfs", "-R", f"cat /{name}", str(raw)], check=True, capture_output=True
                ).stdout
                assert got == data, name
            run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, tmp)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return cached("catalog-ext4", {"files": sorted(FILES), "size": FS_SIZE}, build, "qcow2")


def qemu_info(path: Path) -> dict[str, Any]:
    return json.loads(run("qemu-img", "info", "-U", "--output=json", path))  # type: ignore[no-any-return]


def full_backup(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    copy_sparse(ext4_qcow2(), dest)
    return dest


def incremental(dest: Path, backing: Path, unsafe: bool = False) -> Path:
    """An overlay of ``backing`` named relative to ``dest``'s directory."""
    name = str(backing) if backing.is_absolute() and unsafe else backing.name
    args = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", name, "-F", "qcow2"]
    if unsafe:
        args += ["-u", str(dest), str(FS_SIZE)]
    else:
        args += [str(dest)]
    subprocess.run(args, check=True, cwd=dest.parent)
    return dest


def blank_qcow2(dest: Path) -> Path:
    """A valid QCOW2 image that holds no filesystem (mounting it must fail)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    run("qemu-img", "create", "-q", "-f", "qcow2", dest, FS_SIZE)
    return dest


def make_repository(root: Path) -> dict[str, Path]:
    """vm1: a full backup and two incrementals on it; vm2: a full backup; a non-image file."""
    full = full_backup(root / "vm1" / "disk0-full.qcow2")
    inc1 = incremental(root / "vm1" / "disk0-inc1.qcow2", full)
    inc2 = incremental(root / "vm1" / "disk0-inc2.qcow2", inc1)
    other = full_backup(root / "vm2" / "disk0.qcow2")
    (root / "notes.txt").write_text("not an image\n")
    return {"full": full, "inc1": inc1, "inc2": inc2, "other": other}
