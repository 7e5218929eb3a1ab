"""Checksums recomputed over damaged metadata, so damage reaches the code behind the check.

A random patch inside a GPT header, an LVM label or a Btrfs tree node almost always fails
its checksum, and the parser refuses it at the first line: the fuzzer would only ever test
the checksum. When an input asks for it (:mod:`fuzz.patches`, bit 6 of the first byte), the
harness recomputes the checksums over what the patches touched, as a careless or hostile
writer would, and the structure is parsed for real. Each function returns more patches, to
lay over the damaged image: (offset, bytes).

# References: UEFI 2.10 section 5.3.2 (GPT header and entry array CRC32); LVM2
# lib/label/label.c and lib/format_text/format-text.c (label, mda header and text CRCs);
# the Btrfs on-disk format (crc32c of a node or the superblock from byte 0x20, stored in the
# first 4 bytes); the exFAT specification 6.3.3 (SetChecksum).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from filerestore.blockio import Reader
from filerestore.fs.exfat import ENTRY_SIZE, TYPE_FILE, entry_set_checksum
from filerestore.volume.lvm import MDA_HEADER_SIZE, MDA_MAGIC, lvm_crc

Patch = tuple[int, bytes]
Fixup = Callable[[Reader, tuple[Patch, ...]], list[Patch]]
SECTOR = 512


def _touched(patches: tuple[Patch, ...], start: int, length: int) -> bool:
    return any(p < start + length and p + len(b) > start for p, b in patches)


# --- GPT ------------------------------------------------------------------------------------


def gpt(disk: Reader, patches: tuple[Patch, ...]) -> list[Patch]:
    """The entry array CRC and the header CRC of every GPT header (primary and backup, 512
    and 4096-byte sectors), in that order: the header covers the array's CRC."""
    out: list[Patch] = []
    for ss in (512, 4096):
        sectors = disk.size // ss
        for lba in (1, sectors - 1):
            if sectors < 3 or disk.read_at(lba * ss, 8) != b"EFI PART":
                continue
            header = bytearray(disk.read_at(lba * ss, ss))
            size, entry_lba, count, entry_size = struct.unpack_from("<I", header, 12) + (
                struct.unpack_from("<QII", header, 72)
            )
            if not 92 <= size <= ss:
                continue
            array = min(count * entry_size, 1 << 20)
            if entry_lba and _touched(patches, entry_lba * ss, array):
                struct.pack_into("<I", header, 88, zlib.crc32(disk.read_at(entry_lba * ss, array)))
            header[16:20] = bytes(4)
            struct.pack_into("<I", header, 16, zlib.crc32(bytes(header[:size])))
            out.append((lba * ss + 16, bytes(header[16:20])))
            out.append((lba * ss + 88, bytes(header[88:92])))
    return out


# --- LVM2 -----------------------------------------------------------------------------------


def lvm(pv_offsets: list[int]) -> Fixup:
    """Label, metadata-area header and metadata text CRCs of the PVs at ``pv_offsets``."""

    def fix(disk: Reader, patches: tuple[Patch, ...]) -> list[Patch]:
        out: list[Patch] = []
        for pv in pv_offsets:
            for sector in range(4):
                at = pv + sector * SECTOR
                label = disk.read_at(at, SECTOR)
                if len(label) < SECTOR or label[:8] != b"LABELONE":
                    continue  # a label cut by the disk's end (a fuzzed size) is left alone
                out.append((at + 16, struct.pack("<I", lvm_crc(label[20:]))))
                (offset_xl,) = struct.unpack_from("<I", label, 20)
                for mda in _metadata_areas(label, offset_xl):
                    out += _fix_mda(disk, pv + mda)
        return out

    return fix


def _metadata_areas(label: bytes, offset_xl: int) -> list[int]:
    pos, lists = offset_xl + 40, []
    for _ in range(2):
        items = []
        while pos + 16 <= min(SECTOR, len(label)):
            offset, _size = struct.unpack_from("<QQ", label, pos)
            pos += 16
            if offset == 0:
                break
            items.append(offset)
        lists.append(items)
    return lists[1] if len(lists) == 2 else []


def _fix_mda(disk: Reader, at: int) -> list[Patch]:
    header = bytearray(disk.read_at(at, MDA_HEADER_SIZE))
    if len(header) < MDA_HEADER_SIZE or header[4:20] != MDA_MAGIC:
        return []
    (size,) = struct.unpack_from("<Q", header, 32)
    offset, length = struct.unpack_from("<QQ", header, 40)
    if MDA_HEADER_SIZE <= offset < size and length <= min(size, 4 << 20):
        first = min(length, size - offset)
        text = disk.read_at(at + offset, first)
        if first < length:
            text += disk.read_at(at + MDA_HEADER_SIZE, length - first)
        struct.pack_into("<I", header, 56, lvm_crc(text))
    struct.pack_into("<I", header, 0, lvm_crc(bytes(header[4:])))
    return [(at, bytes(header[:4])), (at + 56, bytes(header[56:60]))]


# --- Btrfs ----------------------------------------------------------------------------------

BTRFS_SUPER = 0x10000


def btrfs(disk: Reader, patches: tuple[Patch, ...]) -> list[Patch]:
    """The crc32c of every tree node a patch touched (a block of the node size holding the
    volume's fsid at 0x20) and of the superblock."""
    sb = disk.read_at(BTRFS_SUPER, 4096)
    if len(sb) < 4096:
        return []
    fsid = sb[0x20:0x30]
    (nodesize,) = struct.unpack_from("<I", sb, 0x94)
    if nodesize not in (4096, 8192, 16384, 32768, 65536):
        return []
    from dissect.util.hash import crc32c

    out: list[Patch] = []
    ends = [p + len(b) - 1 for p, b in patches]
    starts = {p - p % nodesize for p, _ in patches} | {e - e % nodesize for e in ends}
    for start in sorted(starts):
        if start == BTRFS_SUPER - BTRFS_SUPER % nodesize:
            continue
        node = disk.read_at(start, nodesize)
        if len(node) == nodesize and node[0x20:0x30] == fsid:
            out.append((start, struct.pack("<I", crc32c.crc32c(node[0x20:]))))
    out.append((BTRFS_SUPER, struct.pack("<I", crc32c.crc32c(sb[0x20:]))))
    return out


# --- exFAT ----------------------------------------------------------------------------------


def exfat(disk: Reader, patches: tuple[Patch, ...]) -> list[Patch]:
    """SetChecksum of every File entry set within 4 KiB of a patch."""
    out: list[Patch] = []
    seen: set[int] = set()
    for p, b in patches:
        lo = max(0, p - 4096) // ENTRY_SIZE * ENTRY_SIZE
        region = disk.read_at(lo, p + len(b) + 4096 - lo)
        for i in range(0, len(region) - ENTRY_SIZE + 1, ENTRY_SIZE):
            if region[i] != TYPE_FILE or lo + i in seen:
                continue
            seen.add(lo + i)
            count = region[i + 1]
            raw = region[i : i + (count + 1) * ENTRY_SIZE]
            if count >= 2 and len(raw) == (count + 1) * ENTRY_SIZE:
                out.append((lo + i + 2, struct.pack("<H", entry_set_checksum(raw))))
    return out
