# References: "ext4 Data Structures and Algorithms" (kernel.org, Documentation/filesystems/
# ext4/attributes.rst): in-inode attributes after i_extra_isize, the external block's
# ext4_xattr_header, ext4_xattr_entry and its name indexes; the kernel's fs/ext4/xattr.h
# (EXT4_XATTR_MAGIC, EXT4_XATTR_LEN) and fs/ext4/acl.c (ext4_acl_to_disk, the ACL format on
# disk) with include/uapi/linux/posix_acl_xattr.h (the format getxattr returns).
"""Extended attributes of an ext2/3/4 inode, parsed from the inode's spare room and its xattr
block (libfsext 20260821 lists an inode's in-inode attributes only the first time it is
opened: a second open of the same inode shows only those of its block)."""

from __future__ import annotations

import struct

from filerestore.errors import FilesystemError

XATTR_MAGIC = 0xEA020000
BLOCK_HEADER_SIZE = 32  # ext4_xattr_header
_ENTRY = struct.Struct("<BBHIII")  # name_len, name_index, value_offs, value_inum, value_size, hash

#: e_name_index -> the name prefix the kernel shows (fs/ext4/xattr.c, ext4_xattr_handler_map)
NAME_PREFIXES = {
    1: "user.",
    2: "system.posix_acl_access",
    3: "system.posix_acl_default",
    4: "trusted.",
    6: "security.",
    7: "system.",
    8: "system.richacl",
}
_ACL_NAMES = (2, 3)
# ACL tags with an id (ACL_USER, ACL_GROUP); the others are stored without one on disk
_ACL_TAGS_WITH_ID = (0x02, 0x08)


def parse_entries(region: bytes, entries_at: int, values_base: int) -> dict[str, bytes]:
    """The attributes listed from ``entries_at`` in ``region``; value offsets count from
    ``values_base`` (the first entry in an inode, the block's start in a block)."""
    out: dict[str, bytes] = {}
    pos = entries_at
    while pos + 4 <= len(region) and region[pos : pos + 4] != b"\0\0\0\0":
        if pos + _ENTRY.size > len(region):
            raise FilesystemError("ext: an extended attribute entry runs past its region")
        name_len, index, value_offs, value_inum, value_size, _ = _ENTRY.unpack_from(region, pos)
        name_raw = region[pos + _ENTRY.size : pos + _ENTRY.size + name_len]
        if len(name_raw) != name_len:
            raise FilesystemError("ext: an extended attribute name runs past its region")
        if value_inum:
            raise FilesystemError(
                "ext: extended attribute values kept in their own inodes (ea_inode) are not read"
            )
        start = values_base + value_offs
        value = region[start : start + value_size]
        if len(value) != value_size:
            raise FilesystemError("ext: an extended attribute value runs past its region")
        prefix = NAME_PREFIXES.get(index)
        if prefix is not None:  # an unknown index is a namespace the kernel does not show
            name = prefix + name_raw.decode("utf-8", "surrogateescape")
            out[name] = acl_to_xattr(value) if index in _ACL_NAMES else value
        pos += (name_len + _ENTRY.size + 3) & ~3  # EXT4_XATTR_LEN
    return out


def in_inode(raw_inode: bytes, extra_isize: int) -> dict[str, bytes]:
    """Attributes kept in the inode after its extra fields (``raw_inode``: the whole inode)."""
    at = 128 + extra_isize
    if at + 4 > len(raw_inode) or int.from_bytes(raw_inode[at : at + 4], "little") != XATTR_MAGIC:
        return {}
    return parse_entries(raw_inode, at + 4, at + 4)


def in_block(block: bytes) -> dict[str, bytes]:
    """Attributes of an xattr block (``i_file_acl``)."""
    if len(block) < BLOCK_HEADER_SIZE or int.from_bytes(block[:4], "little") != XATTR_MAGIC:
        raise FilesystemError("ext: an inode's extended attribute block has no xattr magic")
    return parse_entries(block, BLOCK_HEADER_SIZE, 0)


def acl_to_xattr(disk: bytes) -> bytes:
    """An ACL in ext4's on-disk form (version 1, short entries without an id) in the form
    getxattr(2) returns (version 2, every entry with an id, -1 where none)."""
    if len(disk) < 4 or int.from_bytes(disk[:4], "little") != 1:
        raise FilesystemError("ext: a POSIX ACL attribute is not in ext4's ACL format")
    out = [struct.pack("<I", 2)]
    pos = 4
    while pos < len(disk):
        tag, perm = struct.unpack_from("<HH", disk, pos)
        if tag in _ACL_TAGS_WITH_ID:
            if pos + 8 > len(disk):
                raise FilesystemError("ext: a POSIX ACL entry is cut short")
            (ident,) = struct.unpack_from("<I", disk, pos + 4)
            pos += 8
        else:
            ident = 0xFFFFFFFF
            pos += 4
        out.append(struct.pack("<HHI", tag, perm, ident))
    return b"".join(out)
