"""An ext4 image whose filesystem is valid but some of whose entries cannot be restored.

Built by ``mke2fs -d`` from a small tree (without metadata checksums, so a name can be
patched in place), then damaged byte by byte:

- three fast symlinks whose targets start with NUL bytes (``debugfs set_inode_field``, the
  shape a Btrfs test image of another project has: symlink targets that are NULs);
- a file whose first extent points far past the end of the volume (its reads fail);
- a directory entry whose name holds a NUL byte, and one whose name holds ``/`` (patched in
  the directory block; no host can hold either name; the ext reader refuses to list the
  directory with the ``/``, so that directory, ``/odd``, is the entry reported).

Every other entry is intact; :data:`GOOD` is what a restore must still write, and
:data:`BROKEN` the guest paths it must report as skipped.
"""

from __future__ import annotations

from pathlib import Path

from tests.imagebuild import fs_linux
from tests.imagebuild.cache import cached

SIZE = 16 << 20
GOOD: dict[str, bytes] = {
    "hello.txt": b"hello, world\n",
    "docs/readme.md": b"# readme\n" * 200,
    "docs/deep/nested.txt": b"nested\n",
    "big.bin": bytes(range(256)) * 8192,  # 2 MiB over several extents' worth of blocks
}
GOOD_LINKS = {"good-link": "docs/readme.md"}
NUL_LINKS = ("docs/nul-link-1", "docs/nul-link-2", "nul-link-3")
BAD_EXTENT = "docs/bad-extent.bin"
NUL_NAME = ("nulXname-marker-7q.txt", "nul\x00name-marker-7q.txt")
# in a directory of its own: the ext reader refuses to list a directory with such a name
SLASH_NAME = ("odd/slashXname-marker-8q.txt", "odd/slash/name-marker-8q.txt")
#: guest paths a restore must skip, each with a reason
BROKEN = (
    *(f"/{p}" for p in NUL_LINKS),
    f"/{BAD_EXTENT}",
    f"/{NUL_NAME[1]}",
    "/odd",
)


def _tree(root: Path) -> None:
    for rel, data in GOOD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    for rel, target in GOOD_LINKS.items():
        (root / rel).symlink_to(target)
    for rel in NUL_LINKS:
        (root / rel).symlink_to("target-to-be-zeroed")
    (root / BAD_EXTENT).write_bytes(b"x" * 40960)
    for marker, _ in (NUL_NAME, SLASH_NAME):
        (root / marker).parent.mkdir(exist_ok=True)
        (root / marker).write_bytes(b"unreachable by name\n")


def _patch_name(image: Path, marker: str, name: str) -> None:
    data = bytearray(image.read_bytes())
    old, new = marker.rsplit("/", 1)[-1].encode(), name.rsplit("/", 1)[-1].encode()
    if "/" in marker:  # the patch turns the directory entry's X into a slash
        new = old.replace(b"X", b"/")
    assert data.count(old) == 1, f"{marker} is not unique in the image"
    at = data.index(old)
    data[at : at + len(old)] = new
    image.write_bytes(bytes(data))


def broken_entries_image() -> Path:
    """The damaged ext4 image (a raw filesystem, no partition table)."""

    def build(tmp: Path) -> None:
        tree = tmp.with_name(tmp.name + ".tree")
        tree.mkdir()
        try:
            _tree(tree)
            fs_linux.run("truncate", "-s", str(SIZE), tmp)
            fs_linux.run(
                "mke2fs", "-q", "-F", "-t", "ext4", "-O", "^metadata_csum", "-d", tree, tmp
            )
        finally:
            fs_linux.run("rm", "-rf", tree)
        for rel in NUL_LINKS:  # i_block holds a fast symlink's target: zero its first word
            fs_linux.run("debugfs", "-w", "-R", f"set_inode_field /{rel} block[0] 0", tmp)
        # i_block words 3-5 are the first extent; word 5 its start block (low 32 bits)
        fs_linux.run(
            "debugfs", "-w", "-R", f"set_inode_field /{BAD_EXTENT} block[5] 0x7ffffff0", tmp
        )
        for marker, name in (NUL_NAME, SLASH_NAME):
            _patch_name(tmp, marker, name)
        listing = fs_linux.run("debugfs", "-R", "ls -l /odd", tmp)
        assert "slash/name" in listing  # the name is damaged
        stat = fs_linux.run("debugfs", "-R", f"stat /{BAD_EXTENT}", tmp)
        assert "2147483632" in stat  # the extent is damaged

    return cached("ext4-broken-entries", {"size": SIZE}, build)
