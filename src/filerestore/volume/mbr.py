"""MBR (DOS) partition tables: four primary entries and the chain of extended boot records.

# References: the IBM PC MBR layout as util-linux libfdisk/src/dos.c and Linux
# block/partitions/msdos.c read it (logical partitions numbered from 5, the first EBR entry
# the logical partition relative to its EBR, the second the link relative to the extended
# partition's start); Microsoft "FAT: General Overview of On-Disk Format" for the BPB that
# tells a volume boot record from an MBR.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from itertools import pairwise

from filerestore.blockio import Reader
from filerestore.errors import PartitionTableError
from filerestore.volume.types import MBR_EXTENDED_TYPES, MBR_PROTECTIVE_GPT

SECTOR = 512  # MBR LBAs are in 512-byte units; 4Kn MBR disks are not supported
BOOT_SIGNATURE = b"\x55\xaa"
TABLE_OFFSET = 446
# Linux stops at DISK_MAX_PARTS (256); a longer chain is hostile, not a disk.
MAX_LOGICAL = 256

# boot_flag, chs_first(3), type, chs_last(3), lba_start, sectors
_ENTRY = struct.Struct("<B3sB3sII")


@dataclass(frozen=True)
class MbrEntry:
    boot_flag: int
    type_id: int
    lba_start: int
    sectors: int

    @property
    def empty(self) -> bool:
        return self.type_id == 0 or self.sectors == 0

    @property
    def extended(self) -> bool:
        return self.type_id in MBR_EXTENDED_TYPES


@dataclass(frozen=True)
class MbrPartition:
    number: int  # p1-p4 by slot, p5... for logical partitions in chain order
    type_id: int
    start: int  # absolute, in sectors
    sectors: int
    bootable: bool

    @property
    def extended(self) -> bool:
        return self.type_id in MBR_EXTENDED_TYPES


def parse_entries(sector: bytes) -> tuple[MbrEntry, ...]:
    """The four entries of an MBR or EBR sector (no validation)."""
    out = []
    for i in range(4):
        flag, _chs1, type_id, _chs2, start, count = _ENTRY.unpack_from(
            sector, TABLE_OFFSET + 16 * i
        )
        out.append(MbrEntry(flag, type_id, start, count))
    return tuple(out)


def looks_like_vbr(sector: bytes) -> bool:
    """Is this the boot sector of a filesystem (NTFS, exFAT, FAT) rather than an MBR?

    Those boot sectors also end in 0x55AA, and their boot code can look like entries.
    """
    oem = sector[3:11]
    if oem in (b"NTFS    ", b"EXFAT   "):
        return True
    if sector[0] not in (0xEB, 0xE9):
        return False
    # A FAT BPB: every field constrained by the spec. GRUB's MBR starts with a jump too but
    # leaves the BPB zeroed, so it fails here.
    bytes_per_sector, spc, reserved, fats = struct.unpack_from("<HBHB", sector, 11)
    media = sector[21]
    return (
        bytes_per_sector in (512, 1024, 2048, 4096)
        and spc in (1, 2, 4, 8, 16, 32, 64, 128)
        and reserved >= 1
        and fats in (1, 2)
        and (media == 0xF0 or media >= 0xF8)
    )


def detect(disk: Reader) -> bool:
    """Does sector 0 hold a plausible MBR (not a filesystem's boot sector)?"""
    sector = disk.read_at(0, SECTOR)
    if len(sector) < SECTOR or sector[510:512] != BOOT_SIGNATURE or looks_like_vbr(sector):
        return False
    entries = parse_entries(sector)
    if any(e.boot_flag not in (0x00, 0x80) for e in entries):
        return False
    return any(not e.empty for e in entries)


def has_protective_entry(disk: Reader) -> bool:
    """Does sector 0 hold an MBR with a GPT-protective (0xEE) entry?"""
    sector = disk.read_at(0, SECTOR)
    if len(sector) < SECTOR or sector[510:512] != BOOT_SIGNATURE or looks_like_vbr(sector):
        return False
    return any(e.type_id == MBR_PROTECTIVE_GPT for e in parse_entries(sector))


def read_mbr(disk: Reader) -> tuple[MbrPartition, ...]:
    """Primary partitions, the extended container, and its logical partitions, in that order.

    A partition that starts or ends past the disk, overlapping primaries, or an EBR chain that
    loops or leaves the extended partition is refused with PartitionTableError.
    """
    disk_sectors = disk.size // SECTOR
    entries = parse_entries(disk.read_at(0, SECTOR))
    parts: list[MbrPartition] = []
    extended: MbrPartition | None = None
    for slot, e in enumerate(entries, start=1):
        if e.empty:
            continue
        p = MbrPartition(slot, e.type_id, e.lba_start, e.sectors, e.boot_flag == 0x80)
        _check_inside(p, 0, disk_sectors, "the disk")
        if p.extended:
            if extended is not None:
                raise PartitionTableError("MBR has more than one extended partition")
            extended = p
        parts.append(p)
    _refuse_overlaps(parts)
    if extended is not None:
        parts.extend(_read_logicals(disk, extended))
    return tuple(parts)


def _check_inside(p: MbrPartition, lo: int, hi: int, where: str) -> None:
    if p.start < lo or p.start + p.sectors > hi:
        raise PartitionTableError(
            f"MBR partition {p.number} (sectors {p.start}+{p.sectors}) lies outside {where} "
            f"(sectors {lo}-{hi - 1})"
        )


def _refuse_overlaps(parts: list[MbrPartition]) -> None:
    ordered = sorted(parts, key=lambda p: p.start)
    for a, b in pairwise(ordered):
        if b.start < a.start + a.sectors:
            raise PartitionTableError(f"MBR partitions {a.number} and {b.number} overlap")


def _read_logicals(disk: Reader, ext: MbrPartition) -> list[MbrPartition]:
    ext_end = ext.start + ext.sectors
    logicals: list[MbrPartition] = []
    seen: set[int] = set()
    ebr = ext.start
    number = 5
    while True:
        if ebr in seen:
            raise PartitionTableError(f"MBR extended partition chain loops back to sector {ebr}")
        if len(seen) >= MAX_LOGICAL:
            raise PartitionTableError(f"MBR extended partition chain is longer than {MAX_LOGICAL}")
        seen.add(ebr)
        sector = disk.read_at(ebr * SECTOR, SECTOR)
        if sector[510:512] != BOOT_SIGNATURE:
            if ebr == ext.start:
                return logicals  # an extended partition holding no logical partitions
            raise PartitionTableError(f"MBR extended boot record at sector {ebr} has no signature")
        data, link = parse_entries(sector)[:2]
        if not data.empty and not data.extended:
            p = MbrPartition(
                number, data.type_id, ebr + data.lba_start, data.sectors, data.boot_flag == 0x80
            )
            _check_inside(p, ext.start, ext_end, f"extended partition {ext.number}")
            logicals.append(p)
            number += 1
        if link.empty or not link.extended:
            _refuse_overlaps(logicals)
            return logicals
        ebr = ext.start + link.lba_start
        if not ext.start <= ebr < ext_end:
            raise PartitionTableError(
                f"MBR extended boot record link to sector {ebr} leaves extended partition "
                f"{ext.number}"
            )
