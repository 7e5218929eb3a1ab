"""Backup chains with known changes for the index tests: a full backup and two incrementals
of one disk, each step made through a kernel mount of the filesystem (ext4, XFS, Btrfs),
through ntfs-3g (NTFS) or exfat-fuse (exFAT), or with mtools (FAT16, FAT32:
tests/imagebuild/index_chain_fat.py, which also says what each state's facts come from).

The cached directory holds ``base.qcow2``, ``inc1.qcow2`` (backing ``base.qcow2``) and
``inc2.qcow2`` (backing ``inc1.qcow2``): each overlay holds exactly the 64 KiB blocks the
step changed on the raw disk, as a hypervisor's incremental would. Beside them, what the
kernel says of each state, never what our reader says:

- ``facts-N.json``: every path of state N (read-only, noatime mount) with its kind,
  size, mode, owner, mtime, ctime, inode, link count, symlink target and the sha256 of a
  file's contents;
- ``diff-M-N.txt``: ``diff -rq --no-dereference`` of the mounted states M and N.

The steps (``STEPS``) change files, rename, delete, add, move directories, replace a file
by a directory, change contents without changing size or mtime, and bring back a deleted
file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.imagebuild import index_chain_fat
from tests.imagebuild.cache import cached
from tests.imagebuild.commands import loop_device, mounted
from tests.imagebuild.fs_linux import loop_mount, run
from tests.imagebuild.qcow import changed_blocks
from tests.imagebuild.tree import MiB, block_content

KINDS = ("ext4", "xfs", "btrfs", "btrfs-sub", "ntfs", "exfat", "fat16", "fat32")
SIZES_MIB = {"ext4": 64, "xfs": 320, "btrfs": 256, "ntfs": 64, "exfat": 64, "fat16": 64}
SIZES_MIB["fat32"] = 64
SIZES_MIB["btrfs-sub"] = 256  # Btrfs with subvolumes (see _subvolumes_base)
#: kinds without symbolic links, hard links or POSIX modes
NO_LINKS = ("exfat", "fat16", "fat32")
LATIN1 = os.fsdecode(b"caf\xe9-latin1.txt")
MTIME = 1_600_000_000
TOUCHED = 1_700_000_000  # the mtime step 2 gives /photos/img_0002.jpg


def _write(path: Path, data: bytes, mtime: int = MTIME) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def base_tree(root: Path, kind: str) -> None:
    _write(root / "docs" / "readme.md", b"# readme\n" * 50)
    _write(root / "docs" / "report-2024.xlsx", block_content("report-2024", 3000))
    _write(root / "docs" / "old" / "notes.txt", b"old notes\n")
    for i in range(1, 21):
        _write(root / "photos" / f"img_{i:04d}.jpg", block_content(f"img{i}", 1000 + i))
    _write(root / "projects" / "alpha" / "main.c", b"int main(void) { return 0; }\n")
    _write(root / "projects" / "alpha" / "Makefile", b"all:\n\tcc main.c\n")
    _write(root / "projects" / "beta" / "main.c", b"int main(void) { return 1; }\n")
    _write(root / "empty.txt", b"")
    _write(root / "unicode" / "Résumé.PDF", b"resume\n")
    if kind in ("ext4", "xfs", "btrfs"):
        # NTFS and exFAT names are UTF-16: their drivers refuse one that is not UTF-8 here
        _write(root / "unicode" / LATIN1, b"latin-1 name\n")
    if kind not in NO_LINKS:
        os.symlink("docs/readme.md", root / "link")
    for i in range(300):
        _write(root / "many" / f"f{i:04d}.txt", b"%d\n" % i)
    if kind == "btrfs-sub":
        _subvolumes_base(root)


def _subvolumes_base(root: Path) -> None:
    """``/home`` and ``/home/alice/nested``: subvolumes, each with inode numbers of its own
    (their first files are inode 257, as the top level's first directory is)."""
    run("btrfs", "subvolume", "create", root / "home")
    _write(root / "home" / "alice" / "notes.txt", b"alice's notes\n")
    _write(root / "home" / "alice" / "todo.txt", b"buy milk\n")
    for i in range(40):
        _write(root / "home" / "bob" / f"b{i:03d}.txt", b"bob %d\n" % i)
    run("btrfs", "subvolume", "create", root / "home" / "alice" / "nested")
    _write(root / "home" / "alice" / "nested" / "deep.txt", b"deep\n")
    _write(root / "home" / "alice" / "nested" / "keep.txt", b"keep\n")


def _subvolumes_step1(root: Path) -> None:
    with (root / "home" / "alice" / "notes.txt").open("ab") as fh:
        fh.write(b"more notes\n")
    (root / "home" / "bob" / "b007.txt").unlink()
    (root / "home" / "bob" / "b008.txt").rename(root / "home" / "bob" / "b008-renamed.txt")
    _write(root / "home" / "bob" / "b100.txt", b"new in step 1\n")
    _write(root / "home" / "alice" / "nested" / "deep.txt", b"deeper\n", MTIME + 30)
    _write(root / "home" / "alice" / "nested" / "new.txt", b"new\n")


def _subvolumes_step2(root: Path) -> None:
    (root / "home" / "bob").rename(root / "home" / "robert")
    (root / "home" / "alice" / "todo.txt").unlink()
    (root / "home" / "alice" / "nested" / "keep.txt").chmod(0o600)
    _write(root / "home" / "alice" / "nested" / "sub" / "inside.txt", b"inside\n")


def step1(root: Path, kind: str) -> None:
    with (root / "docs" / "readme.md").open("ab") as fh:
        fh.write(b"appended in step 1\n")
    _write(root / "docs" / "report-2025.xlsx", block_content("report-2025", 4000))
    (root / "docs" / "report-2024.xlsx").rename(root / "docs" / "report-2024-final.xlsx")
    (root / "photos" / "img_0005.jpg").unlink()
    (root / "projects" / "beta").rename(root / "docs" / "old" / "beta")
    if kind not in NO_LINKS:
        (root / "docs" / "old" / "notes.txt").chmod(0o600)
        os.link(root / "photos" / "img_0001.jpg", root / "photos" / "copy.jpg")
    _write(root / "many" / "f0100.txt", b"changed in step 1\n")
    (root / "many" / "f0200.txt").unlink()
    _write(root / "many" / "f0300.txt", b"new in step 1\n")
    if kind == "btrfs-sub":
        _subvolumes_step1(root)


def step2(root: Path, kind: str) -> None:
    main = root / "projects" / "alpha" / "main.c"
    _write(main, main.read_bytes().replace(b"return 0", b"return 7"), MTIME + 60)
    shutil.rmtree(root / "docs" / "old")
    (root / "empty.txt").unlink()
    _write(root / "empty.txt" / "inside.txt", b"a directory now\n")
    os.utime(root / "photos" / "img_0002.jpg", (TOUCHED, TOUCHED))
    # new bytes, same size, the old mtime put back: only ctime and the contents tell
    _write(root / "photos" / "img_0003.jpg", block_content("img3-new", 1003))
    _write(root / "photos" / "img_0005.jpg", block_content("img5-again", 1005))
    (root / "projects" / "alpha").rename(root / "projects" / "alpha2")
    if kind == "btrfs-sub":
        _subvolumes_step2(root)


STEPS: list[Callable[[Path, str], None]] = [base_tree, step1, step2]
NAMES = ("base", "inc1", "inc2")


def _mkfs(kind: str, raw: Path) -> None:
    run("truncate", "-s", f"{SIZES_MIB[kind]}M", raw)
    if kind == "ext4":
        run("mke2fs", "-q", "-F", "-t", "ext4", "-I", "256", "-L", "idx", raw)
    elif kind == "ntfs":
        run("mkntfs", "-q", "-F", "-f", "-L", "idx", raw)
    elif kind == "xfs":
        run("mkfs.xfs", "-q", "-L", "idx", raw)
    elif kind == "exfat":
        run("mkfs.exfat", "-L", "idx", raw)
    else:
        run("mkfs.btrfs", "-q", "-L", "idx", raw)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def facts_of(mnt: Path) -> dict[str, dict[str, Any]]:
    """The kernel's view of every entry below ``mnt`` (keyed by its path in the guest)."""
    out: dict[str, dict[str, Any]] = {}
    for dirpath, dirnames, filenames in os.walk(mnt):
        names = dirnames + filenames + (["."] if Path(dirpath) == mnt else [])
        for name in names:
            p = Path(dirpath) / name if name != "." else mnt
            st = p.lstat()
            rel = "/" + str(p.relative_to(mnt)).lstrip(".")
            if rel == "/lost+found" or rel.startswith("/lost+found/"):
                continue
            kind = (
                "dir"
                if stat.S_ISDIR(st.st_mode)
                else "file"
                if stat.S_ISREG(st.st_mode)
                else "symlink"
                if stat.S_ISLNK(st.st_mode)
                else "other"
            )
            out[rel] = {
                "kind": kind,
                "size": st.st_size if kind != "dir" else 0,
                "mode": st.st_mode,
                "uid": st.st_uid,
                "gid": st.st_gid,
                "mtime_ns": st.st_mtime_ns,
                "ctime_ns": st.st_ctime_ns,
                "inode": st.st_ino,
                "nlink": st.st_nlink,
                "target": os.readlink(p) if kind == "symlink" else None,
                "sha256": _sha(p) if kind == "file" else None,
            }
    return out


def _write_facts(path: Path, facts: dict[str, dict[str, Any]], kind: str) -> None:
    if kind in NO_LINKS:  # the root of FAT and exFAT has no entry, so no times
        facts["/"].update(mtime_ns=None, ctime_ns=None)
    path.write_text(json.dumps(facts))


def overlay(out: Path, backing: str, old_raw: Path, new_raw: Path) -> None:
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", out)
    with tempfile.TemporaryDirectory() as tmp:
        cmds: list[str] = []
        for n, (offset, data) in enumerate(changed_blocks(old_raw, new_raw)):
            piece = Path(tmp) / f"w{n}"
            piece.write_bytes(data)
            cmds += ["-c", f"write -s {piece} {offset} {len(data)}"]
        if cmds:
            run("qemu-io", "-f", "qcow2", *cmds, out)


@contextlib.contextmanager
def _mount(kind: str, raw: Path, options: str) -> Iterator[Path]:
    if kind not in ("ntfs", "exfat"):
        with loop_mount(raw, options) as mnt:
            yield mnt
        return
    if kind == "exfat":
        with (
            tempfile.TemporaryDirectory(prefix="fr-exfat-") as tmp,
            loop_device(raw) as dev,
            mounted(["mount.exfat-fuse", "-o", options, dev], Path(tmp) / "mnt") as mnt,
        ):
            yield mnt
        return
    with (
        tempfile.TemporaryDirectory(prefix="fr-ntfs-") as tmp,
        mounted(["ntfs-3g", "-o", options, raw], Path(tmp) / "mnt") as mnt,
    ):
        yield mnt


def _build(out: Path, kind: str) -> None:
    out.mkdir()
    work = Path(tempfile.mkdtemp(prefix="fr-idx-chain-"))
    try:
        raws = [work / f"{name}.raw" for name in NAMES]
        if kind.startswith("fat"):
            index_chain_fat.mkfs(kind, raws[0], SIZES_MIB[kind])
        else:
            _mkfs(kind, raws[0])
        for i, step in enumerate(STEPS):
            if i:
                run("cp", "--sparse=always", raws[i - 1], raws[i])
            if kind.startswith("fat"):
                index_chain_fat.change(raws[i], i)
                index_chain_fat.read_back(raws[i], work / f"tree-{i}")
                _write_facts(out / f"facts-{i}.json", facts_of(work / f"tree-{i}"), kind)
                continue
            with _mount(kind, raws[i], "rw,noatime") as mnt:
                step(mnt, kind)
                run("sync", "-f", mnt)
            with _mount(kind, raws[i], "ro,noatime") as mnt:
                _write_facts(out / f"facts-{i}.json", facts_of(mnt), kind)
                # a copy for diff -r: two copies of one XFS or Btrfs (same UUID) cannot be
                # mounted at once
                run("cp", "-a", f"{mnt}/.", work / f"tree-{i}")
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raws[0], out / "base.qcow2")
        for i in (1, 2):
            overlay(out / f"{NAMES[i]}.qcow2", f"{NAMES[i - 1]}.qcow2", raws[i - 1], raws[i])
        for a, b in ((0, 1), (1, 2), (0, 2)):
            done = subprocess.run(
                ["diff", "-rq", "--no-dereference", f"tree-{a}", f"tree-{b}"],
                capture_output=True,
                check=False,
                cwd=work,
            )
            text = done.stdout.decode("utf-8", "surrogateescape")
            text = text.replace(f"tree-{a}", "A").replace(f"tree-{b}", "B")
            (out / f"diff-{a}-{b}.txt").write_text(text, errors="surrogateescape")
        for i, name in enumerate(NAMES):  # each state read back through qemu, as stored
            got = work / f"{name}.check"
            run("qemu-img", "convert", "-O", "raw", out / f"{name}.qcow2", got)
            if got.read_bytes() != raws[i].read_bytes():
                raise RuntimeError(f"{name}.qcow2 does not read back as the state it was made of")
            got.unlink()
    finally:
        shutil.rmtree(work)


def index_chain(kind: str) -> Path:
    """The cached chain directory for ``kind`` (one of ``KINDS``)."""
    if kind not in KINDS:
        raise ValueError(kind)
    recipe: dict[str, Any] = {
        "kind": kind,
        "size": SIZES_MIB[kind],
        "steps": [s.__name__ for s in STEPS],
    }
    if kind.startswith("fat"):  # its steps live in their own module
        recipe["fat"] = hashlib.sha256(Path(index_chain_fat.__file__).read_bytes()).hexdigest()
    return cached(f"index-chain-{kind}", recipe, lambda out: _build(out, kind), suffix="d")


def facts(chain: Path, state: int) -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads((chain / f"facts-{state}.json").read_text())
    return data


def diff_r(chain: Path, a: int, b: int) -> list[str]:
    text = (chain / f"diff-{a}-{b}.txt").read_text(errors="surrogateescape")
    return [line for line in text.splitlines() if line]


__all__ = ["MiB", "index_chain"]
