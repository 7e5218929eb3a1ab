"""What the FUSE view serves, checked with real tools against the source trees.

Each filesystem kind's test image (built by real tools from a known tree, see
tests/imagebuild) is mounted once with ``filerestore mount`` on the real /dev/fuse; then
``find``, GNU ``stat``, ``sha256sum``, ``readlink`` (through find's ``%l``), ``dd``,
``rsync -a --dry-run --itemize-changes`` and ``diff -r`` look at it as at any directory.
Expected values come from the source tree and, for inode numbers and link counts, from the
kernel's own loop mount of the same image (``mount_facts``), never from our output.

Only what a format stores is compared. Documented differences:
- FAT and exFAT store no owners, no permission bits, no symlinks or hard links, and mtimes
  in 2-second units; NTFS stores no Unix owners or modes. The view shows the mounting
  user as owner and modes synthesised from the read-only flag, so rsync runs with
  ``--no-perms --no-owner --no-group`` there and stat compares neither.
- ext directories hold ``lost+found``, which no tree has.
- mke2fs -d copies whole seconds of times; rsync compares seconds unless told otherwise.
- Btrfs entries inside another subvolume get ``1 << 48 | inode`` (inodes/inodes.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fs.treecheck import tree_entries
from tests.fuse.mounting import mounted
from tests.imagebuild import fs_linux, fs_windows, fs_xattrs
from tests.imagebuild.tree import GiB, block_content

pytestmark = pytest.mark.timeout(900)


@dataclass(frozen=True)
class Case:
    kind: str
    image: Path
    tree: Path
    posix: bool = True  # the format stores Unix modes and owners
    links: bool = True  # symlinks and hard links
    mtime_ns: int = 1  # resolution of the mtimes the image holds
    extra: tuple[str, ...] = ()  # root entries the image has and the tree has not
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # the kernel's view
    #: rsync lines the image must show against the tree, each for a reason in CASES' builders
    rsync_differences: frozenset[str] = frozenset()


def _facts(image: Path, fstype: str) -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = json.loads(fs_linux.mount_facts(image, fstype).read_text())
    return loaded


# the root directory's own mtime: its writer touched it after the tree was copied (mke2fs
# made lost+found, Btrfs got a subvolume, NTFS got its reparse links), or the format keeps no
# times for its root (FAT, exFAT)
ROOT_TIME = ".d..t...... ./"
# written by the NTFS builder as reparse points after the copy: their times are the build's
NTFS_LINK_TIMES = frozenset(f".L..t...... {name}" for name in fs_windows.NTFS_REPARSE_LINKS)


def _ext4() -> Case:
    image = fs_linux.ext_image("ext4")
    tree = fs_linux.linux_tree("ext")
    facts = _facts(image, "ext4")
    return Case(
        "ext4",
        image,
        tree,
        mtime_ns=10**9,
        extra=("lost+found",),
        facts=facts,
        rsync_differences=frozenset({ROOT_TIME}),
    )


def _xfs() -> Case:
    image = fs_linux.xfs_image()
    return Case("xfs", image, fs_linux.linux_tree("xfs"), facts=_facts(image, "xfs"))


def _btrfs() -> Case:
    pytest.importorskip("dissect.btrfs", reason="the [btrfs] extra is not installed")
    image = fs_linux.btrfs_image()
    return Case(
        "btrfs",
        image,
        fs_linux.linux_tree("btrfs"),
        facts=_facts(image, "btrfs"),
        rsync_differences=frozenset({ROOT_TIME}),
    )


def _windows(
    kind: str,
    built: fs_windows.BuiltImage,
    *,
    mtime_ns: int,
    links: bool = True,
    rsync_differences: frozenset[str] = frozenset({ROOT_TIME}),
) -> Case:
    """A Windows format's case: it stores no Unix owners or modes."""
    return Case(
        kind,
        built.image,
        built.tree,
        posix=False,
        links=links,
        mtime_ns=mtime_ns,
        rsync_differences=rsync_differences,
    )


def _ntfs() -> Case:
    return _windows(
        "ntfs",
        fs_windows.ntfs_image(),
        mtime_ns=100,
        rsync_differences=NTFS_LINK_TIMES | {ROOT_TIME},
    )


def _fat32() -> Case:  # FAT and exFAT keep no links and mtimes in 2-second units
    return _windows("fat32", fs_windows.fat_image(32), links=False, mtime_ns=2 * 10**9)


def _exfat() -> Case:
    return _windows("exfat", fs_windows.exfat_image(), links=False, mtime_ns=2 * 10**9)


CASES: dict[str, Callable[[], Case]] = {
    "ext4": _ext4,
    "xfs": _xfs,
    "btrfs": _btrfs,
    "ntfs": _ntfs,
    "fat32": _fat32,
    "exfat": _exfat,
}
# The kinds each check applies to: a test is parametrized over those only, never skipped for
# a kind it does not apply to (the view fixture checks these against the built cases).
#: a kernel driver reads them here, so inode numbers, link counts and root times have a witness
KERNEL_READ = ["ext4", "xfs", "btrfs"]
#: the tree holds symlinks, hard links and a sparse file (FAT and exFAT store none of them)
LINKS = ["ext4", "xfs", "btrfs", "ntfs"]
#: formats without extended attributes (those of the Linux formats are compared below)
NO_XATTRS = ["ntfs", "fat32", "exfat"]


@dataclass(frozen=True)
class Mounted:
    case: Case
    mnt: Path


@pytest.fixture(scope="module", params=list(CASES))
def view(request: pytest.FixtureRequest) -> Iterator[Mounted]:
    case = CASES[request.param]()
    assert (case.kind in KERNEL_READ) == bool(case.facts)
    assert (case.kind in LINKS) == case.links == (case.tree / "sparse.bin").exists()
    with mounted(case.image) as mnt:
        yield Mounted(case, mnt)


def tool(*args: str | os.PathLike[str], ok_codes: tuple[int, ...] = (0,)) -> bytes:
    done = subprocess.run([os.fspath(a) for a in args], capture_output=True, check=False)
    assert done.returncode in ok_codes, (
        args,
        done.returncode,
        done.stderr.decode(errors="replace"),
    )
    return done.stdout


def _split0(out: bytes, width: int) -> list[list[str]]:
    fields = [os.fsdecode(f) for f in out.split(b"\0")[:-1]]
    return [fields[i : i + width] for i in range(0, len(fields), width)]


def expected(view: Mounted) -> dict[str, os.stat_result]:
    """The tree's entries by relative path ("docs/readme.md")."""
    return {p.lstrip("/"): st for p, st in tree_entries(view.case.tree).items()}


def served_paths(view: Mounted, *find_args: str) -> list[str]:
    """Relative paths find lists below the mount, the image's extra root entries left out."""
    out = tool("find", view.mnt, "-mindepth", "1", *find_args, "-printf", "%P\\0")
    paths = [os.fsdecode(p) for p in out.split(b"\0")[:-1]]
    return [p for p in paths if p.split("/")[0] not in view.case.extra]


_TYPE_LETTERS = {stat.S_IFDIR: "d", stat.S_IFREG: "f", stat.S_IFLNK: "l"}


def test_find_lists_the_tree_with_types(view: Mounted) -> None:
    out = tool("find", view.mnt, "-mindepth", "1", "-printf", "%P\\0%y\\0")
    got = {p: t for p, t in _split0(out, 2) if p.split("/")[0] not in view.case.extra}
    want = {p: _TYPE_LETTERS[stat.S_IFMT(st.st_mode)] for p, st in expected(view).items()}
    assert got == want


def _stat_all(view: Mounted, paths: list[str]) -> dict[str, list[str]]:
    """GNU stat of every path: raw mode (hex), size, uid, gid, mtime (ns), nlink, inode."""
    fmt = "%n\\0%f\\0%s\\0%u\\0%g\\0%.9Y\\0%h\\0%i\\0"
    out: dict[str, list[str]] = {}
    for i in range(0, len(paths), 1000):
        chunk = [view.mnt / p for p in paths[i : i + 1000]]
        raw = tool("stat", "--printf", fmt, "--", *chunk)
        for row in _split0(raw, 8):
            out[str(Path(row[0]).relative_to(view.mnt))] = row[1:]
    return out


def test_stat_matches_the_tree(view: Mounted) -> None:
    case = view.case
    want = expected(view)
    got = _stat_all(view, sorted(want))
    problems = []
    for path, st in want.items():
        mode_hex, size, uid, gid, mtime, _, _ = got[path]
        mode = int(mode_hex, 16)
        if stat.S_IFMT(mode) != stat.S_IFMT(st.st_mode):
            problems.append(f"type {mode:o}: {path}")
            continue
        if case.posix and not stat.S_ISLNK(mode) and mode != st.st_mode:
            problems.append(f"mode {mode:o} != {st.st_mode:o}: {path}")
        if case.posix and (int(uid), int(gid)) != (st.st_uid, st.st_gid):
            problems.append(f"owner {uid}:{gid}: {path}")
        if not stat.S_ISDIR(mode) and int(size) != st.st_size:
            problems.append(f"size {size} != {st.st_size}: {path}")
        seconds, _, frac = mtime.partition(".")
        mtime_ns = int(seconds) * 10**9 + int(frac)
        if stat.S_ISREG(mode) and abs(mtime_ns - st.st_mtime_ns) >= case.mtime_ns:
            problems.append(f"mtime {mtime_ns} != {st.st_mtime_ns}: {path}")
    assert problems == []


@pytest.mark.parametrize("view", KERNEL_READ, indirect=True)
def test_inodes_and_link_counts_match_the_kernel(view: Mounted) -> None:
    case = view.case
    paths = served_paths(view)
    got = _stat_all(view, paths)
    problems = []
    for path in paths:
        fact = case.facts["/" + path]
        *_, nlink, ino = got[path]
        want_ino = fact["inode"]
        if case.kind == "btrfs" and (path == "subvol" or path.startswith("subvol/")):
            # inode numbers repeat per subvolume: the view puts the second subvolume (its
            # root included) in the next number space (fuse/inodes.py)
            want_ino |= 1 << 48
        if int(ino) != want_ino or int(nlink) != fact["nlink"]:
            problems.append(f"inode {ino} nlink {nlink} != {want_ino} {fact['nlink']}: {path}")
    assert problems == []


@pytest.mark.parametrize("view", LINKS, indirect=True)
def test_hard_links_share_one_inode(view: Mounted) -> None:
    a = os.lstat(view.mnt / "hello.txt")
    b = os.lstat(view.mnt / "docs" / "hello-hardlink.txt")
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def test_every_file_reads_back_its_sha256(view: Mounted) -> None:
    files = sorted(
        p for p, st in expected(view).items() if stat.S_ISREG(st.st_mode) and st.st_size < GiB
    )
    got: dict[str, str] = {}
    for i in range(0, len(files), 500):
        out = tool("sha256sum", "-z", "--", *(view.mnt / p for p in files[i : i + 500]))
        for line in out.split(b"\0")[:-1]:
            digest, _, name = line.partition(b"  ")
            got[str(Path(os.fsdecode(name)).relative_to(view.mnt))] = digest.decode()
    want = {p: _sha256(view.case.tree / p) for p in files}
    assert got == want


@pytest.mark.parametrize("view", LINKS, indirect=True)
def test_symlinks_read_back_their_targets(view: Mounted) -> None:
    out = tool("find", view.mnt, "-type", "l", "-printf", "%P\\0%l\\0")
    got = dict(_split0(out, 2))
    want = {
        p: os.readlink(view.case.tree / p)
        for p, st in expected(view).items()
        if stat.S_ISLNK(st.st_mode)
    }
    assert got == want
    assert tool("readlink", view.mnt / "link-relative").decode().strip() == "docs/readme.md"


@pytest.mark.parametrize("view", LINKS, indirect=True)
def test_holes_read_as_zeros(view: Mounted) -> None:
    tree = view.case.tree
    # 64 KiB of data, a hole up to 32 MiB, 64 KiB of data
    hole = tool("dd", f"if={view.mnt / 'sparse.bin'}", "bs=64K", "skip=100", "count=64")
    assert hole == bytes(64 * 64 * 1024)
    tail = tool("dd", f"if={view.mnt / 'sparse.bin'}", "bs=64K", "skip=512")
    assert tail == block_content("sparse-tail", 64 * 1024)
    if (tree / "big-sparse.bin").exists():
        # past 4 GiB, in the hole, and across the hole's end at 5 GiB
        mid = tool("dd", f"if={view.mnt / 'big-sparse.bin'}", "bs=1M", "skip=4500", "count=2")
        assert mid == bytes(2 << 20)
        end = tool("dd", f"if={view.mnt / 'big-sparse.bin'}", "bs=4K", f"skip={5 * GiB // 4096}")
        assert end == block_content("big-tail", 8192)


def test_rsync_dry_run_sees_no_difference(view: Mounted) -> None:
    case = view.case
    args = ["rsync", "-a", "--dry-run", "--itemize-changes", "--out-format=%i %n"]
    args += [f"--exclude=/{name}" for name in case.extra]
    if case.links:
        args.append("-H")
    if not case.posix:
        args += ["--no-perms", "--no-owner", "--no-group"]
    if case.mtime_ns > 1:
        args.append(f"--modify-window={case.mtime_ns // 10**9}")
    out = tool(*args, f"{view.mnt}/", f"{case.tree}/").decode(errors="replace").splitlines()
    # at most the documented differences (whether the root's time shows depends on the
    # tree directory's own time, which its builders do not fix; test_the_roots_times...)
    assert set(out) <= case.rsync_differences, out


@pytest.mark.parametrize("view", KERNEL_READ, indirect=True)
def test_the_roots_times_are_the_kernels(view: Mounted) -> None:
    # the root's times are the one thing rsync finds different on most kinds: where the
    # kernel reads the format, it must read the same
    options = "ro,noload" if view.case.kind.startswith("ext") else "ro"
    with fs_linux.loop_mount(view.case.image, options) as kernel:
        want = os.stat(kernel)
    got = os.stat(view.mnt)
    assert (got.st_mtime_ns, got.st_ctime_ns, got.st_mode) == (
        want.st_mtime_ns,
        want.st_ctime_ns,
        want.st_mode,
    )


def test_diff_r_sees_no_difference(view: Mounted) -> None:
    excludes = [f"--exclude={name}" for name in view.case.extra]
    out = tool("diff", "-r", "--no-dereference", *excludes, view.mnt, view.case.tree)
    assert out == b""


def test_statfs_reports_the_volume(view: Mounted) -> None:
    out = tool("stat", "-f", "--printf", "%T %b %S", view.mnt).decode().split()
    assert out[0] == "fuseblk" or out[0].startswith("fuse")
    # the filesystem is the whole image file (a raw image: volume "disk")
    assert int(out[1]) * int(out[2]) == view.case.image.stat().st_size


@pytest.mark.parametrize("view", NO_XATTRS, indirect=True)
def test_formats_without_xattrs_list_none(view: Mounted) -> None:
    # NTFS alternate data streams are not extended attributes: none is listed
    assert tool("getfattr", "-d", "-m", "-", view.mnt / "docs" / "readme.md") == b""


# --- extended attributes -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["ext4", "xfs"])
def xattr_mount(request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    with mounted(fs_xattrs.xattr_image(request.param)) as mnt:
        yield request.param, mnt


def test_getfattr_dumps_what_the_tree_holds(xattr_mount: tuple[str, Path]) -> None:
    fstype, mnt = xattr_mount
    tree = fs_xattrs.xattr_tree(fstype)
    # every namespace root can read (user, trusted, the ACL in system), values as hex
    want = fs_xattrs.dump(tree)
    assert want.count("# file:") == len(fs_xattrs.expected(fstype))
    assert fs_xattrs.dump(mnt) == want
    # asked again: libfsext once showed an inode's in-inode attributes only the first time
    assert fs_xattrs.dump(mnt) == want


def test_getfattr_of_one_name(xattr_mount: tuple[str, Path]) -> None:
    _, mnt = xattr_mount
    out = tool("getfattr", "--only-values", "-n", "user.color", mnt / "plain.txt")
    assert out == b"blue"
    missing = subprocess.run(
        ["getfattr", "-n", "user.none", mnt / "plain.txt"], capture_output=True
    )
    assert missing.returncode == 1 and b"No such attribute" in missing.stderr
    assert tool("getfattr", "-d", "-m", "-", mnt / "no-xattrs.txt") == b""


# --- a large directory -------------------------------------------------------------------------


def test_a_directory_of_10000_entries_lists_whole() -> None:
    image = fs_linux.ext_image("ext4", "ext-many")
    tree = fs_linux.linux_tree("ext-many") / "many"
    with mounted(image) as mnt:
        # ls -f: getdents in the order served, ".", ".." and every name once
        listed = tool("ls", "-f", mnt / "many").decode().splitlines()
        assert sorted(listed) == sorted([".", "..", *os.listdir(tree)])
        # the dot entries carry the directory's and its parent's numbers, as the kernel's
        inodes = dict(
            line.split()[::-1] for line in tool("ls", "-fi", mnt / "many").decode().splitlines()
        )
        assert int(inodes["."]) == (mnt / "many").stat().st_ino
        assert int(inodes[".."]) == mnt.stat().st_ino
        # and with every entry's attributes (the readdirplus replies), as often as asked
        for _ in range(2):
            long = tool("ls", "-ln", "--time-style=+%s", mnt / "many").decode().splitlines()
            sizes = {line.split()[-1]: int(line.split()[4]) for line in long[1:]}
            assert sizes == {name: (tree / name).stat().st_size for name in os.listdir(tree)}
