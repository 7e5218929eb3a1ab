"""ext4 and XFS images whose source tree carries extended attributes, built by real tools.

The tree: files and a directory with ``user.*`` attributes (an empty value, a binary one,
one large enough to leave the inode for an xattr block) and a ``trusted.*`` one (root sets
it; ``getfattr -m -`` shows it to root). ext4 gets them from ``mke2fs -d`` (which copies
xattrs since e2fsprogs 1.43), XFS from ``cp -a`` through a loop mount. Each image is checked
through a read-only kernel loop mount with ``getfattr`` against the tree before it enters
the cache.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

from tests.imagebuild.cache import cached
from tests.imagebuild.fs_linux import loop_mount, run


def _acl(*entries: tuple[int, int, int]) -> bytes:
    """A POSIX ACL as setfacl hands it to setxattr (posix_acl_xattr.h: version 2, then
    tag, perm, id per entry; id -1 where the tag has none)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


NO_ID = 0xFFFFFFFF
#: u::rw-, u:1234:r--, g::r--, m::r--, o::---
ACL = _acl((0x01, 6, NO_ID), (0x02, 4, 1234), (0x04, 4, NO_ID), (0x10, 4, NO_ID), (0x20, 0, NO_ID))

#: path -> {name: value}; the values the tree is given and an image must give back
XATTRS: dict[str, dict[str, bytes]] = {
    "/plain.txt": {"user.color": b"blue", "user.empty": b"", "user.bin": bytes(range(256))},
    "/big-xattr.txt": {"user.big": b"x" * 1500},
    "/dir": {"user.dir-note": b"on a directory", "trusted.secret": b"root only"},
    "/dir/inner.txt": {"user.inner": b"\x00\x01 nul inside"},
}
#: ext4 keeps ACLs in a shorter form of its own: getxattr must return this form again. Only
#: in the ext4 tree: XFS keeps ACLs as trusted.SGI_ACL_FILE, which its kernel driver shows
#: beside system.posix_acl_access and the view does not convert (not covered here).
ACL_XATTRS: dict[str, dict[str, bytes]] = {"/acl.txt": {"system.posix_acl_access": ACL}}


def expected(fstype: str) -> dict[str, dict[str, bytes]]:
    return {**XATTRS, **ACL_XATTRS} if fstype == "ext4" else XATTRS


def xattr_tree(fstype: str) -> Path:
    """The source tree of :func:`xattr_image` (``fstype`` "ext4" or "xfs")."""
    wanted = expected(fstype)

    def build(dest: Path) -> None:
        (dest / "dir").mkdir(parents=True)
        for rel in wanted:
            path = dest / rel.lstrip("/")
            if rel != "/dir":
                path.write_bytes(f"contents of {rel}\n".encode())
        (dest / "no-xattrs.txt").write_bytes(b"none here\n")
        for rel, attrs in wanted.items():
            for name, value in attrs.items():
                os.setxattr(dest / rel.lstrip("/"), name, value, follow_symlinks=False)

    recipe = {"xattrs": {k: {n: v.hex() for n, v in a.items()} for k, a in wanted.items()}}
    return cached(f"tree-xattrs-{fstype}", recipe, build, "d")


def dump(root: Path) -> str:
    """``getfattr -R -d -m - -e hex`` of ``root``, with paths relative to it."""
    out = subprocess.run(
        ["getfattr", "-R", "-d", "-m", "-", "-e", "hex", "."],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # getfattr lists in directory order, which differs between trees: sort the blocks
    blocks = [b.strip() for b in out.split("\n\n") if b.strip()]
    return "\n\n".join(sorted(blocks))


def _verify(image: Path, tree: Path) -> None:
    with loop_mount(image, "ro") as mnt:
        if dump(mnt) != dump(tree):
            raise AssertionError("the kernel reads other xattrs than the tree holds")


def xattr_image(fstype: str) -> Path:
    """``fstype`` "ext4" or "xfs", holding :func:`xattr_tree`."""
    tree = xattr_tree(fstype)

    def build(tmp: Path) -> None:
        if fstype == "ext4":
            run("truncate", "-s", "16M", tmp)
            # 4 KiB blocks so the large attribute fits its xattr block
            run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-d", tree, tmp)
        else:
            run("truncate", "-s", "320M", tmp)
            run("mkfs.xfs", "-q", tmp)
            with loop_mount(tmp, "rw") as mnt:
                run("cp", "-a", f"{tree}/.", mnt)
        _verify(tmp, tree)

    return cached(f"xattrs-{fstype}", {"fstype": fstype, "tree": tree.name}, build)
