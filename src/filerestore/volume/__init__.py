"""Volumes on a disk: GPT or MBR partitions, LVM2 logical volumes, or the whole disk.

``list_volumes(disk)`` returns every volume with a stable id:

- ``p1``, ``p2`` ...: partitions, numbered as Linux numbers them (GPT: the slot in the entry
  array; MBR: primary slots 1-4, logical partitions from 5 in chain order). An MBR extended
  partition is listed as ``sfdisk`` lists it, with type name "Extended" (or "W95 Ext'd
  (LBA)", "Linux extended"): a container, never a filesystem.
- ``lvm/<vg>/<lv>``: visible logical volumes of every volume group whose physical volumes
  are on this disk (a partition of any type carrying an LVM2 label, or the whole disk). The
  partition itself is listed too. An LV with a physical volume on another disk, or a segment
  type other than linear/striped, is listed with ``error`` set and a reader that raises
  :class:`VolumeUnavailableError`.
- ``disk``: the whole disk, when it holds no partition table (a filesystem or a PV on it).

Corrupt tables raise :class:`PartitionTableError` or :class:`LvmMetadataError`; no volume
ever reads past the end of the disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from filerestore.blockio import Reader, SliceReader
from filerestore.errors import PartitionTableError, VolumeNotFoundError
from filerestore.volume import gpt
from filerestore.volume.types import MBR_EXTENDED_TYPES, gpt_type_name, mbr_type_name

if TYPE_CHECKING:
    from filerestore.volume import lvm

# The LVM2 reader is imported only for a volume that carries a PV label (start-up time of
# the CLI, issue 14): these are lvm.LABEL_ID and lvm.LABEL_SCAN_SECTORS (a test checks).
LVM_LABEL_ID = b"LABELONE"
LVM_LABEL_SECTORS = 4
SECTOR = 512

__all__ = ["Volume", "find_volume", "list_volumes"]


@dataclass(frozen=True)
class Volume:
    """One volume of a disk: where it lies, what it is, and a reader of its bytes."""

    id: str  # "p1", "p5", "lvm/<vg>/<lv>", "disk"
    scheme: str  # "gpt" | "mbr" | "lvm" | "disk"
    offset: int | None  # bytes on the disk; None for an LV that is not one contiguous range
    size: int  # bytes
    type: str  # GPT type GUID (lowercase), MBR type ("0x83"), "lvm", or "disk"
    type_name: str  # as sfdisk names it: "Linux filesystem", "W95 FAT32 (LBA)", ...
    label: str | None  # GPT partition name or LV name
    uuid: str | None  # GPT unique partition GUID or LV uuid
    reader: Reader = field(compare=False, repr=False)
    error: str | None = None  # set when the volume is listed but cannot be read

    @property
    def is_container(self) -> bool:
        """An MBR extended partition: it holds logical partitions, not a filesystem."""
        return self.scheme == "mbr" and int(self.type, 16) in MBR_EXTENDED_TYPES


def list_volumes(disk: Reader) -> list[Volume]:
    """Every volume on ``disk``: partitions first, then LVM logical volumes."""
    # Detection order matters:
    # 1. GPT before MBR: a GPT disk starts with a protective (or hybrid) MBR that is itself a
    #    valid MBR. A protective MBR with no valid GPT behind it is an error, not an MBR disk.
    # 2. MBR before a whole-disk filesystem: mbr.detect refuses FAT/NTFS/exFAT boot sectors,
    #    which also end in 0x55AA.
    # 3. Otherwise the disk has no partition table: it is one volume, which may be an LVM PV.
    # The MBR reader is imported only for a disk without a GPT header (start-up time of the
    # CLI, issue 14).
    if gpt.detect(disk):
        partitions = _gpt_volumes(disk)
    else:
        from filerestore.volume import mbr

        if mbr.has_protective_entry(disk):
            partitions = _gpt_volumes(disk)
        elif mbr.detect(disk):
            partitions = _mbr_volumes(disk)
        else:
            return _whole_disk(disk)
    pvs = []
    for v in partitions:
        if not v.is_container:
            pv = _scan_physical_volume(v.reader, v.offset or 0)
            if pv is not None:
                pvs.append(pv)
    return partitions + _lv_volumes(disk, pvs)


def find_volume(volumes: list[Volume], volume_id: str) -> Volume:
    """The volume called ``volume_id``; VolumeNotFoundError lists the ids there are."""
    for v in volumes:
        if v.id == volume_id:
            return v
    there = ", ".join(v.id for v in volumes) or "none"
    raise VolumeNotFoundError(f"no volume {volume_id!r} in the image (volumes: {there})")


def _gpt_volumes(disk: Reader) -> list[Volume]:
    try:
        table = gpt.read_gpt(disk)
    except PartitionTableError as exc:
        if not gpt.detect(disk):
            raise PartitionTableError(f"protective MBR (type 0xEE) without a GPT: {exc}") from exc
        raise
    ss = table.header.sector_size
    out = []
    for p in table.partitions:
        offset, size = p.first_lba * ss, (p.last_lba - p.first_lba + 1) * ss
        out.append(
            Volume(
                f"p{p.number}",
                "gpt",
                offset,
                size,
                p.type_guid,
                gpt_type_name(p.type_guid),
                p.name or None,
                p.unique_guid,
                SliceReader(disk, offset, size),
            )
        )
    return out


def _mbr_volumes(disk: Reader) -> list[Volume]:
    from filerestore.volume import mbr

    out = []
    for p in mbr.read_mbr(disk):
        offset, size = p.start * mbr.SECTOR, p.sectors * mbr.SECTOR
        out.append(
            Volume(
                f"p{p.number}",
                "mbr",
                offset,
                size,
                f"0x{p.type_id:02x}",
                mbr_type_name(p.type_id),
                None,
                None,
                SliceReader(disk, offset, size),
            )
        )
    return out


def _scan_physical_volume(reader: Reader, offset: int) -> lvm.PhysicalVolume | None:
    """lvm.scan_physical_volume, without importing the LVM reader for a volume with no PV
    label in its first sectors (lvm.parse_label's rule)."""
    head = reader.read_at(0, LVM_LABEL_SECTORS * SECTOR)
    starts = range(0, LVM_LABEL_SECTORS * SECTOR, SECTOR)
    if not any(head[at : at + len(LVM_LABEL_ID)] == LVM_LABEL_ID for at in starts):
        return None
    from filerestore.volume import lvm

    return lvm.scan_physical_volume(reader, offset)


def _whole_disk(disk: Reader) -> list[Volume]:
    pv = _scan_physical_volume(disk, 0)
    if pv is None:
        return [Volume("disk", "disk", 0, disk.size, "disk", "Whole disk", None, None, disk)]
    whole = Volume("disk", "disk", 0, disk.size, "lvm", "Linux LVM", None, pv.label.uuid, disk)
    return [whole, *_lv_volumes(disk, [pv])]


def _lv_volumes(disk: Reader, pvs: list[lvm.PhysicalVolume]) -> list[Volume]:
    if not pvs:
        return []
    from filerestore.volume import lvm
    from filerestore.volume.lv_reader import (
        LogicalVolumeReader,
        UnavailableReader,
        contiguous_offset,
    )

    out = []
    for lv in lvm.logical_volumes(pvs):
        reader: Reader
        if lv.error is None:
            reader = LogicalVolumeReader(disk, lv.segments)
        else:
            reader = UnavailableReader(lv.size, f"lvm/{lv.vg_name}/{lv.name}: {lv.error}")
        out.append(
            Volume(
                f"lvm/{lv.vg_name}/{lv.name}",
                "lvm",
                contiguous_offset(lv.segments),
                lv.size,
                "lvm",
                lv.type_name,
                lv.name,
                lv.uuid,
                reader,
                lv.error,
            )
        )
    return out
