"""LVM2 physical volumes: the label, the metadata area, and the logical volumes they hold.

# References: LVM2 lib/label/label.c and lib/format_text/layout.h (label_header,
# pv_header, disk_locn, mda_header, raw_locn), lib/format_text/format-text.c (the metadata
# text lives in a circular buffer after the 512-byte mda header), lib/misc/crc.c (the CRC:
# CRC-32 polynomial, initial value 0xf597a6cf, no final inversion).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from itertools import pairwise

from filerestore.blockio import Reader
from filerestore.errors import LvmMetadataError
from filerestore.volume.lv_reader import MappedSegment
from filerestore.volume.lvm_metadata import LvMeta, VgMeta, parse_config, volume_group

SECTOR = 512  # LVM counts in 512-byte sectors whatever the disk's logical sector size
LABEL_ID = b"LABELONE"
LABEL_TYPE = b"LVM2 001"
LABEL_SCAN_SECTORS = 4  # the label may sit in any of sectors 0-3
MDA_MAGIC = b" LVM2 x[5A%r0N*>"
MDA_HEADER_SIZE = 512
INITIAL_CRC = 0xF597A6CF
RAW_LOCN_IGNORED = 0x1
# LVM's default metadata area is 1 MiB; a text far larger is hostile, and parsing 4 MiB of
# text takes about a second here.
MAX_METADATA = 4 << 20

_LABEL = struct.Struct("<8sQII8s")  # id, sector_xl, crc_xl, offset_xl, type
_LOCN = struct.Struct("<QQ")  # disk_locn: offset, size (bytes)
_MDA = struct.Struct("<I16sIQQ")  # checksum_xl, magic, version, start, size
_RAW_LOCN = struct.Struct("<QQII")  # offset, size, checksum, flags


def lvm_crc(data: bytes, initial: int = INITIAL_CRC) -> int:
    """LVM's calc_crc: zlib's CRC-32 without its pre- and post-inversion."""
    return ~zlib.crc32(data, ~initial & 0xFFFFFFFF) & 0xFFFFFFFF


def format_uuid(raw: str) -> str:
    """A 32-character LVM id in the 6-4-4-4-4-4-6 dashed form the tools print."""
    cuts = (0, 6, 10, 14, 18, 22, 26, 32)
    return "-".join(raw[a:b] for a, b in pairwise(cuts))


@dataclass(frozen=True)
class DiskLocn:
    offset: int  # bytes from the start of the PV
    size: int


@dataclass(frozen=True)
class PvLabel:
    uuid: str  # dashed
    device_size: int
    data_areas: tuple[DiskLocn, ...]
    metadata_areas: tuple[DiskLocn, ...]


def parse_label(head: bytes) -> PvLabel | None:
    """The PV label in the first four sectors, None if there is none; corrupt: an error."""
    for sector_no in range(LABEL_SCAN_SECTORS):
        sector = head[sector_no * SECTOR : (sector_no + 1) * SECTOR]
        if len(sector) == SECTOR and sector[:8] == LABEL_ID:
            return _parse_label_sector(sector, sector_no)
    return None


def _parse_label_sector(sector: bytes, sector_no: int) -> PvLabel:
    _id, sector_xl, crc, offset_xl, label_type = _LABEL.unpack_from(sector)
    if sector_xl != sector_no:
        raise LvmMetadataError(f"LVM label in sector {sector_no} says it is in sector {sector_xl}")
    if lvm_crc(sector[20:]) != crc:
        raise LvmMetadataError("LVM label checksum mismatch")
    if label_type != LABEL_TYPE:
        raise LvmMetadataError(f"LVM label type {label_type!r} is not supported")
    if not 32 <= offset_xl <= SECTOR - 40 - 2 * _LOCN.size:
        raise LvmMetadataError("LVM label's PV header lies outside the label sector")
    uuid_raw = sector[offset_xl : offset_xl + 32]
    if not uuid_raw.isascii() or not uuid_raw.isalnum():
        raise LvmMetadataError("LVM PV header uuid is not alphanumeric")
    (device_size,) = struct.unpack_from("<Q", sector, offset_xl + 32)
    pos = offset_xl + 40
    lists: list[tuple[DiskLocn, ...]] = []
    for _ in range(2):  # data areas, then metadata areas, each ended by a zero entry
        items = []
        while True:
            if pos + _LOCN.size > SECTOR:
                raise LvmMetadataError("LVM PV header area list runs off the label sector")
            offset, size = _LOCN.unpack_from(sector, pos)
            pos += _LOCN.size
            if offset == 0:
                break
            items.append(DiskLocn(offset, size))
        lists.append(tuple(items))
    return PvLabel(format_uuid(uuid_raw.decode()), device_size, lists[0], lists[1])


def read_metadata_text(pv: Reader, mda: DiskLocn) -> str | None:
    """The committed metadata text of one metadata area, None if it holds none."""
    if mda.size < 2 * MDA_HEADER_SIZE or mda.offset + mda.size > pv.size:
        raise LvmMetadataError("LVM metadata area lies outside the physical volume")
    header = pv.read_at(mda.offset, MDA_HEADER_SIZE)
    checksum, magic, version, start, size = _MDA.unpack_from(header)
    if magic != MDA_MAGIC:
        raise LvmMetadataError("LVM metadata area has no magic")
    if lvm_crc(header[4:]) != checksum:
        raise LvmMetadataError("LVM metadata area header checksum mismatch")
    if version != 1 or start != mda.offset or size != mda.size:
        raise LvmMetadataError("LVM metadata area header does not match the PV label")
    offset, length, text_crc, flags = _RAW_LOCN.unpack_from(header, _MDA.size)
    if offset == 0 or flags & RAW_LOCN_IGNORED:
        return None
    if not MDA_HEADER_SIZE <= offset < size or length > size - MDA_HEADER_SIZE:
        raise LvmMetadataError("LVM metadata text lies outside its metadata area")
    if length > MAX_METADATA:
        raise LvmMetadataError(f"LVM metadata text of {length} bytes is larger than the limit")
    first = min(length, size - offset)
    # The buffer is circular: text that reaches the end wraps to just after the header.
    text = pv.read_at(start + offset, first)
    if first < length:
        text += pv.read_at(start + MDA_HEADER_SIZE, length - first)
    if lvm_crc(text) != text_crc:
        raise LvmMetadataError("LVM metadata text checksum mismatch")
    try:
        return text.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LvmMetadataError("LVM metadata text is not UTF-8") from exc


@dataclass(frozen=True)
class PhysicalVolume:
    """A PV found on this disk: where it is, and the newest VG metadata it carries."""

    label: PvLabel
    offset: int  # byte offset of the PV device on the disk
    size: int
    vg: VgMeta | None


def scan_physical_volume(pv: Reader, offset: int) -> PhysicalVolume | None:
    """The PV on ``pv`` (a partition or the whole disk at ``offset``), None if there is none."""
    label = parse_label(pv.read_at(0, LABEL_SCAN_SECTORS * SECTOR))
    if label is None:
        return None
    newest: VgMeta | None = None
    for mda in label.metadata_areas:
        text = read_metadata_text(pv, mda)
        if text is None:
            continue
        vg = volume_group(parse_config(text))
        if newest is None or vg.seqno > newest.seqno:
            newest = vg
    return PhysicalVolume(label, offset, pv.size, newest)


@dataclass(frozen=True)
class LogicalVolume:
    vg_name: str
    name: str
    uuid: str
    size: int
    type_name: str
    segments: tuple[MappedSegment, ...]  # empty when unavailable
    error: str | None  # why it cannot be read (a PV missing, an unsupported segment type)


def logical_volumes(found: list[PhysicalVolume]) -> list[LogicalVolume]:
    """Every visible LV of every VG whose metadata is on this disk, sorted by VG and LV name."""
    by_uuid = {pv.label.uuid: pv for pv in found}
    groups: dict[str, VgMeta] = {}
    for pv in found:
        if pv.vg is not None:
            best = groups.get(pv.vg.uuid)
            if best is None or pv.vg.seqno > best.seqno:
                groups[pv.vg.uuid] = pv.vg
    names = [vg.name for vg in groups.values()]
    for name in names:
        if names.count(name) > 1:  # ids "lvm/<vg>/<lv>" would not be unique
            raise LvmMetadataError(f"two different volume groups are named {name!r}")
    out = []
    for vg in groups.values():
        for lv in vg.lvs:
            if lv.visible:
                out.append(_resolve(vg, lv, by_uuid))
    return sorted(out, key=lambda lv: (lv.vg_name, lv.name))


def _resolve(vg: VgMeta, lv: LvMeta, by_uuid: dict[str, PhysicalVolume]) -> LogicalVolume:
    extent = vg.extent_size * SECTOR
    size = sum(s.extent_count for s in lv.segments) * extent
    kinds = {s.type if len(s.stripes) != 1 else "linear" for s in lv.segments}
    type_name = "LVM " + "+".join(sorted(kinds))
    refs = {p.name: p for p in vg.pvs}

    def volume(segments: tuple[MappedSegment, ...], error: str | None) -> LogicalVolume:
        return LogicalVolume(vg.name, lv.name, lv.uuid, size, type_name, segments, error)

    mapped: list[MappedSegment] = []
    for seg in lv.segments:
        if seg.type != "striped":
            return volume((), f"segment type {seg.type!r} is not supported")
        per_stripe = seg.extent_count // len(seg.stripes)
        areas = []
        for pv_name, pe in seg.stripes:
            ref = refs.get(pv_name)
            if ref is None:
                raise LvmMetadataError(f"LVM metadata: lv {lv.name} uses unknown PV {pv_name!r}")
            found = by_uuid.get(ref.uuid)
            if found is None or ref.missing:
                return volume((), f"physical volume {ref.uuid} is not on this disk")
            if pe + per_stripe > ref.pe_count:
                raise LvmMetadataError(
                    f"LVM metadata: lv {lv.name} maps past PV {pv_name}'s extents"
                )
            begin = ref.pe_start * SECTOR + pe * extent
            if begin + per_stripe * extent > found.size:
                raise LvmMetadataError(
                    f"LVM metadata: lv {lv.name} maps past the end of PV {pv_name}"
                )
            areas.append(found.offset + begin)
        length = seg.extent_count * extent
        chunk = seg.stripe_size * SECTOR if len(areas) > 1 else length
        if (per_stripe * extent) % chunk:
            raise LvmMetadataError(
                f"LVM metadata: lv {lv.name} stripe size does not divide extents"
            )
        mapped.append(MappedSegment(seg.start_extent * extent, length, chunk, tuple(areas)))
    return volume(tuple(mapped), None)
