"""Builds (once, cached) the backup chain of bench/index_scale.py with the real tools.

One ext4 disk (a bare filesystem on a raw file, made by ``mke2fs -d`` from a generated tree
of N files in directories of 1,000, named from a small vocabulary with their number, one file
in 8 holding a few bytes) and B backups of it: ``b000.qcow2`` (the full backup) and
``b001.qcow2`` ... each an overlay whose backing file is the previous backup.

Each next backup is one change made through a kernel loop mount of the raw disk (noatime)
of about 1% of the files, clustered the way real changes are, in a fifth of the directories
(seeded per step): in each, files appended to and files deleted (two to one) and as many new
files as were deleted, 1% of the disk's files in all. After the unmount, the 4 KiB blocks
where the raw disk now differs from its copy before the change are written (``qemu-io``) into
a new qcow2 overlay (4 KiB clusters) of the previous backup: the incremental a hypervisor's
dirty-block tracking would take (about 11 MB at 100,000 files: inodes, journal, directory
and data blocks). The raw disk and the source tree are removed; the cached directory keeps
only the chain (sparse) and ``manifest.json``:

- per step, the paths modified, deleted and added, the directories whose entries changed,
  and the count of files the kernel saw through the mount after the change (checked against
  the generator's count);
- the expected numbers of index versions, from the generator: every file of the first
  backup plus each modified or added file; every directory (with the root and lost+found)
  plus one per step for each directory whose entries changed.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

from tests.imagebuild.bench_tools import run
from tests.imagebuild.cache import cached
from tests.imagebuild.fs_linux import data_ranges, loop_mount
from tests.imagebuild.qcow import _overlay
from tests.imagebuild.sparse import copy_sparse

MiB = 1 << 20
PER_DIR = 1000
WORDS = ("report", "invoice", "photo", "notes", "backup", "data", "config", "draft", "log")
EXTS = ("txt", "pdf", "jpg", "xlsx", "docx", "csv", "json")
CLUSTER = 4096


def leaf_dir(i: int) -> str:
    return f"d{i // (PER_DIR * 10):03d}/s{(i // PER_DIR) % 10}"


def file_name(i: int) -> str:
    return f"{WORDS[i % len(WORDS)]}-{i:07d}.{EXTS[i % len(EXTS)]}"


def _contents(i: int) -> bytes:
    return b"" if i % 8 else (b"%d\n" % i) * (1 + i % 20)


def _make_tree(dest: Path, files: int) -> dict[str, list[str]]:
    live: dict[str, list[str]] = {}
    for i in range(files):
        d = leaf_dir(i)
        if i % PER_DIR == 0:
            (dest / d).mkdir(parents=True)
            live[d] = []
        (dest / d / file_name(i)).write_bytes(_contents(i))
        live[d].append(file_name(i))
    return live


def _plan(step: int, live: dict[str, list[str]], files: int) -> dict[str, list[str]]:
    """About 1% of ``files``: in a fifth of the directories, half appended to, a quarter
    deleted, as many added."""
    rng = random.Random(step)
    dirs = rng.sample(sorted(live), max(1, len(live) // 5))
    per_dir = max(4, files // 100 // len(dirs))
    plan: dict[str, list[str]] = {"modified": [], "deleted": [], "added": [], "dirs": dirs}
    for d in dirs:
        names = rng.sample(live[d], min(len(live[d]), per_dir * 3 // 4))
        cut = len(names) * 2 // 3
        plan["modified"] += [f"{d}/{n}" for n in names[:cut]]
        plan["deleted"] += [f"{d}/{n}" for n in names[cut:]]
        for j in range(len(names) - cut):
            word = rng.choice(WORDS)
            plan["added"].append(f"{d}/{word}-new-{step:03d}-{j:04d}.txt")
    return plan


def _apply(mnt: Path, step: int, plan: dict[str, list[str]], live: dict[str, list[str]]) -> None:
    for rel in plan["modified"]:
        with (mnt / rel).open("ab") as fh:
            fh.write(b"changed in step %d\n" % step)
    for rel in plan["deleted"]:
        (mnt / rel).unlink()
        d, name = rel.rsplit("/", 1)
        live[d].remove(name)
    for rel in plan["added"]:
        (mnt / rel).write_bytes(b"added in step %d\n" % step)
        d, name = rel.rsplit("/", 1)
        live[d].append(name)
    os.sync()


def _kernel_files(mnt: Path) -> int:
    return sum(len(names) for top, _, names in os.walk(mnt) if not top.endswith("lost+found"))


def _changes(old: Path, new: Path) -> list[tuple[int, bytes]]:
    """(offset, bytes of ``new``) of each run of CLUSTER-sized blocks where the files differ,
    reading only where either has data (holes read as zeros)."""
    step = 16 * CLUSTER
    spans = sorted(data_ranges(old) + data_ranges(new))
    out: list[tuple[int, bytes]] = []
    done = 0
    with old.open("rb") as fa, new.open("rb") as fb:
        for start, end in spans:
            for pos in range(max(done, start - start % step), end, step):
                a, b = os.pread(fa.fileno(), step, pos), os.pread(fb.fileno(), step, pos)
                if a == b:
                    continue
                a = a.ljust(len(b), b"\0")
                for at in range(0, len(b), CLUSTER):
                    piece = b[at : at + CLUSTER]
                    if piece == a[at : at + CLUSTER]:
                        continue
                    if out and out[-1][0] + len(out[-1][1]) == pos + at:
                        out[-1] = (out[-1][0], out[-1][1] + piece)
                    else:
                        out.append((pos + at, piece))
            done = max(done, end + (-end) % step)
    return out


def _catch_up(old: Path, writes: list[tuple[int, bytes]]) -> None:
    with old.open("r+b") as fh:
        for offset, data in writes:
            os.pwrite(fh.fileno(), data, offset)


def _build(out: Path, files: int, backups: int) -> None:
    out.mkdir()
    work = Path(tempfile.mkdtemp(prefix="idxscale-", dir=out.parent))
    try:
        live = _make_tree(work / "tree", files)
        raw = work / "disk.raw"
        with raw.open("wb") as fh:
            fh.truncate(max(256, files * 3 // 1024 + 256) * MiB)
        inodes = str(files + files // 2 + 10_000)
        run(
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-N",
            inodes,
            "-L",
            "scale",
            "-d",
            work / "tree",
            raw,
        )
        run("rm", "-rf", work / "tree")
        dirs = len(live) + len({d.split("/")[0] for d in live}) + 2  # + root and lost+found
        steps: list[dict[str, Any]] = []
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out / "b000.qcow2")
        before = work / "before.raw"
        copy_sparse(raw, before)
        for step in range(1, backups):
            plan = _plan(step, live, files)
            with loop_mount(raw, "rw,noatime") as mnt:
                _apply(mnt, step, plan, live)
                seen = _kernel_files(mnt)
            expected = sum(len(v) for v in live.values())
            if seen != expected:
                raise RuntimeError(f"step {step}: the kernel sees {seen} files, not {expected}")
            name = f"b{step:03d}.qcow2"
            writes = _changes(before, raw)
            previous = f"b{step - 1:03d}.qcow2"
            _overlay(
                out / name, out / previous, previous, writes=writes,
                options=[f"cluster_size={CLUSTER}"],
            )  # fmt: skip
            _catch_up(before, writes)
            steps.append(
                {
                    **plan,
                    "kernel_files": seen,
                    "image": name,
                    "changed_bytes": sum(len(d) for _, d in writes),
                }
            )
        manifest = {
            "files": files,
            "backups": backups,
            "steps": steps,
            "expected_versions": {
                "file": files + sum(len(s["modified"]) + len(s["added"]) for s in steps),
                "dir": dirs + sum(len(s["dirs"]) for s in steps),
            },
            "final_files": sum(len(v) for v in live.values()),
        }
        (out / "manifest.json").write_text(json.dumps(manifest))
    finally:
        run("rm", "-rf", work)


def build(files: int, backups: int) -> Path:
    """The cached chain directory (see the module docstring)."""
    return cached(
        "index-scale",
        {"files": files, "backups": backups},
        lambda out: _build(out, files, backups),
        suffix="chain",
    )


def manifest(chain: Path) -> dict[str, Any]:
    return dict(json.loads((chain / "manifest.json").read_text()))
