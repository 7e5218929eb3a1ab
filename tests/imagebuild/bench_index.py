"""Builds (once, cached under .cache/bench) the images of bench/index.py with the real tools.

For one filesystem kind and a file count N, the cached directory holds:

- ``base.qcow2``: a GPT disk with one partition holding the filesystem (7-Zip descends
  qcow2 -> GPT -> filesystem by itself only when the disk has one partition), uncompressed;
- ``incr.qcow2``: an overlay on ``base.qcow2`` holding exactly the 64 KiB blocks that a
  change of about 1% of the files made (through the kernel, ntfs-3g, exfat-fuse or mtools)
  left different: the incremental backup a hypervisor would take of that change;
- ``manifest.json``: the counts, the partition offset, and what the change did.

The tree: N files in directories of 1,000 (``dNNN/sN/``), named from a small vocabulary with
their number (``report-0001234.pdf``; FAT gets 8.3 names, because mtools takes minutes to
make 8.3 aliases for long names in a 1,000-entry directory); one file in 8 holds a few bytes,
the rest are empty. The change: 0.5% of the files get bytes appended, 0.2% are deleted,
0.2% are added, 0.1% are renamed in place.

Every filesystem is checked after it is built by an independent reader (a kernel loop mount,
ntfs-3g, exfat-fuse, or mtools): the count of files.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.imagebuild.bench_tools import CACHE, build_once, lay, mounted, run
from tests.imagebuild.commands import loop_device
from tests.imagebuild.fs_linux import data_ranges

MiB = 1 << 20
VERSION = 1
BLOCK = 64 * 1024
WORDS = ("report", "invoice", "photo", "notes", "backup", "data", "config", "draft", "log")
EXTS = ("txt", "pdf", "jpg", "xlsx", "docx", "csv", "json")
PER_DIR = 1000


# --- the tree and its change ---------------------------------------------------------------


def rel_path(i: int, short: bool) -> str:
    d = f"d{i // (PER_DIR * 10):03d}/s{(i // PER_DIR) % 10}"
    if short:
        return f"{d}/f{i:07d}.txt"
    return f"{d}/{WORDS[i % len(WORDS)]}-{i:07d}.{EXTS[i % len(EXTS)]}"


def content(i: int) -> bytes:
    return b"" if i % 8 else (b"%d\n" % i) * (1 + i % 20)


def make_tree(dest: Path, files: int, short: bool) -> None:
    for i in range(files):
        path = dest / rel_path(i, short)
        if i % PER_DIR == 0:
            path.parent.mkdir(parents=True)
        path.write_bytes(content(i))


def change_plan(files: int, short: bool) -> dict[str, list[str]]:
    """What the 1% change does, by relative path."""
    plan: dict[str, list[str]] = {"modified": [], "deleted": [], "added": [], "renamed": []}
    for i in range(files):
        if i % 200 == 1:
            plan["modified"].append(rel_path(i, short))
        elif i % 500 == 3:
            plan["deleted"].append(rel_path(i, short))
        elif i % 1000 == 5:
            plan["renamed"].append(rel_path(i, short))
        if i % 500 == 7:
            d = rel_path(i, short).rsplit("/", 1)[0]
            plan["added"].append(f"{d}/n{i:07d}.txt" if short else f"{d}/new-{i:07d}.txt")
    return plan


def renamed_to(rel: str, short: bool) -> str:
    d, name = rel.rsplit("/", 1)
    return f"{d}/r{name[1:]}" if short else f"{d}/{name}.renamed"


def apply_change(root: Path, plan: dict[str, list[str]], short: bool) -> None:
    """The change made through a mounted filesystem (kernel or FUSE)."""
    for rel in plan["modified"]:
        with (root / rel).open("ab") as fh:
            fh.write(b"appended by the 1% change\n")
    for rel in plan["deleted"]:
        (root / rel).unlink()
    for rel in plan["renamed"]:
        (root / rel).rename(root / renamed_to(rel, short))
    for rel in plan["added"]:
        (root / rel).write_bytes(b"added by the 1% change\n")
    os.sync()


# --- mounting ------------------------------------------------------------------------------


@contextlib.contextmanager
def mount(kind: str, image: Path, writable: bool) -> Iterator[Path]:
    """The filesystem image ``image`` mounted by the kernel, ntfs-3g or exfat-fuse."""
    mnt = image.with_suffix(".mnt" if writable else ".check")
    opts = {
        "kernel": "loop,noatime" if writable else "ro,loop",
        "ntfs": "big_writes,noatime" if writable else "ro",
        "exfat": "rw" if writable else "ro",
    }
    if kind in ("ext4", "xfs", "btrfs"):
        with mounted(["mount", "-o", opts["kernel"], image], mnt, fuse=False) as m:
            yield m
    elif kind == "ntfs":
        with mounted(["ntfs-3g", "-o", opts["ntfs"], image], mnt, fuse=True) as m:
            yield m
    elif kind == "exfat":
        argv = ["mount.exfat-fuse", "-o", opts["exfat"]]
        with loop_device(image) as dev, mounted([*argv, dev], mnt, fuse=True) as m:
            yield m
    else:
        raise ValueError(kind)


# --- filesystems ---------------------------------------------------------------------------


def part_mib(kind: str, files: int) -> int:
    # room for the inodes (ext4: 256 bytes each), MFT records (1 KiB each), directories
    return max(512, files * 3 // 1024 + 256) if kind != "btrfs" else max(512, files // 256)


def make_fs(kind: str, image: Path, src: Path, files: int) -> None:
    size = part_mib(kind, files)
    with image.open("wb") as fh:
        fh.truncate(size * MiB)
    if kind == "ext4":
        inodes = str(files + files // 10 + 10_000)
        run("mke2fs", "-q", "-F", "-t", "ext4", "-N", inodes, "-L", "bench", "-d", src, image)
        return
    if kind == "fat32":
        run("mkfs.vfat", "-F", "32", "-n", "BENCH", image)
        # top-level directories one by one: one mcopy of a whole 1M-file tree is quadratic
        for top in sorted(src.iterdir()):
            run("mcopy", "-s", "-m", "-i", image, top, "::/")
        return
    if kind == "xfs":
        run("mkfs.xfs", "-q", "-L", "bench", image)
    elif kind == "btrfs":
        run("mkfs.btrfs", "-q", "-L", "bench", image)
    elif kind == "ntfs":
        run("mkntfs", "-q", "-F", "-f", "-L", "bench", image)
    elif kind == "exfat":
        run("mkfs.exfat", "-L", "bench", image)
    with mount(kind, image, writable=True) as mnt:
        for top in sorted(src.iterdir()):
            run("cp", "-r", top, mnt)
        os.sync()


def count_files(kind: str, image: Path) -> int:
    """Files in the filesystem, counted by an independent reader."""
    if kind == "fat32":
        out = run("mdir", "-/", "-b", "-i", image, "::/")
        return sum(1 for line in out.splitlines() if line.endswith(".txt"))
    with mount(kind, image, writable=False) as m:
        return sum(len(names) for _, _, names in os.walk(m))


def change_fs(kind: str, image: Path, plan: dict[str, list[str]], short: bool) -> None:
    if kind != "fat32":
        with mount(kind, image, writable=True) as mnt:
            apply_change(mnt, plan, short)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for rel in plan["modified"]:
            local = Path(tmp) / "m"
            run("mcopy", "-n", "-m", "-i", image, f"::/{rel}", local)
            with local.open("ab") as fh:
                fh.write(b"appended by the 1% change\n")
            run("mcopy", "-o", "-m", "-i", image, local, f"::/{rel}")
        for rel in plan["deleted"]:
            run("mdel", "-i", image, f"::/{rel}")
        for rel in plan["renamed"]:
            run("mren", "-i", image, f"::/{rel}", renamed_to(rel, short).rsplit("/", 1)[1])
        added = Path(tmp) / "a"
        added.write_bytes(b"added by the 1% change\n")
        for rel in plan["added"]:
            run("mcopy", "-m", "-i", image, added, f"::/{rel}")


# --- disks ---------------------------------------------------------------------------------


def gpt_disk(raw: Path, fs_image: Path) -> int:
    """A GPT disk holding ``fs_image`` in its one partition; returns the partition offset."""
    size = fs_image.stat().st_size
    with raw.open("wb") as fh:
        fh.truncate(size + 2 * MiB)
    run("sfdisk", "-q", raw, stdin=f"label: gpt\nsize={size // 512}, type=linux\n")
    start = int(
        json.loads(run("sfdisk", "--json", raw))["partitiontable"]["partitions"][0]["start"]
    )
    offset = start * 512
    lay(fs_image, raw, offset)
    return offset


def changed_blocks(old: Path, new: Path) -> list[tuple[int, int]]:
    """(offset, length) runs of BLOCK-sized blocks where ``new`` differs from ``old``."""
    regions = sorted(data_ranges(old) + data_ranges(new))
    runs: list[tuple[int, int]] = []
    seen = -1
    with old.open("rb") as fa, new.open("rb") as fb:
        for start, end in regions:
            first = max(start - start % BLOCK, seen)
            for pos in range(first, end, BLOCK):
                a = os.pread(fa.fileno(), BLOCK, pos)
                b = os.pread(fb.fileno(), BLOCK, pos)
                if a.ljust(len(b), b"\0") != b:
                    if runs and runs[-1][0] + runs[-1][1] == pos:
                        runs[-1] = (runs[-1][0], runs[-1][1] + BLOCK)
                    else:
                        runs.append((pos, BLOCK))
                seen = pos + BLOCK
    return runs


def overlay(base: Path, new_fs: Path, offset: int, runs: list[tuple[int, int]], out: Path) -> None:
    """``out``: an overlay of ``base`` holding ``new_fs``'s bytes at ``runs`` (fs offsets)."""
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", base.name, "-F", "qcow2", out)
    with tempfile.TemporaryDirectory() as tmp, new_fs.open("rb") as fh:
        cmds: list[str] = []
        for n, (pos, length) in enumerate(runs):
            piece = Path(tmp) / f"w{n}"
            piece.write_bytes(os.pread(fh.fileno(), length, pos))
            cmds += ["-c", f"write -s {piece} {offset + pos} {length}"]
            if len(cmds) >= 800:
                run("qemu-io", "-f", "qcow2", *cmds, out)
                cmds = []
                for old in Path(tmp).iterdir():
                    old.unlink()
        if cmds:
            run("qemu-io", "-f", "qcow2", *cmds, out)


# --- the cached build ----------------------------------------------------------------------


def source_tree(files: int, short: bool) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"index-tree-{files}{'-short' if short else ''}-v{VERSION}"
    if not out.exists():
        tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=CACHE))
        make_tree(tmp / "t", files, short)
        (tmp / "t").rename(out)
        tmp.rmdir()
    return out


def build(kind: str, files: int) -> Path:
    """The cached directory for ``kind`` with ``files`` files (see the module docstring)."""
    short = kind == "fat32"

    def make(tmp: Path) -> None:
        _build(tmp, kind, files, source_tree(files, short), short)

    return build_once(f"index-{kind}-{files}", [VERSION, kind, files], Path(__file__), make)


def _build(root: Path, kind: str, files: int, src: Path, short: bool) -> None:
    fs_base = root / "fs-base.img"
    make_fs(kind, fs_base, src, files)
    counted = count_files(kind, fs_base)
    if counted != files:
        raise RuntimeError(f"{kind}: the built filesystem holds {counted} files, not {files}")
    fs_new = root / "fs-incr.img"
    run("cp", "--sparse=always", fs_base, fs_new)
    plan = change_plan(files, short)
    change_fs(kind, fs_new, plan, short)
    expected = files - len(plan["deleted"]) + len(plan["added"])
    counted = count_files(kind, fs_new)
    if counted != expected:
        raise RuntimeError(f"{kind}: the changed filesystem holds {counted} files, not {expected}")
    raw = root / "base.raw"
    offset = gpt_disk(raw, fs_base)
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, root / "base.qcow2")
    raw.unlink()
    runs = changed_blocks(fs_base, fs_new)
    overlay(root / "base.qcow2", fs_new, offset, runs, root / "incr.qcow2")
    fs_base.unlink()
    fs_new.unlink()
    manifest = {
        "kind": kind,
        "files": files,
        "offset": offset,
        "changed_bytes": sum(n for _, n in runs),
        "change": {k: len(v) for k, v in plan.items()},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":  # python -m tests.imagebuild.bench_index ext4:100000 ...
    import sys

    for arg in sys.argv[1:]:
        kind, _, count = arg.partition(":")
        print(build(kind, int(count)))
