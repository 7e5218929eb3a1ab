"""VMDK, VHD and VHDX files built byte by byte, for what qemu-img cannot make.

qemu-img writes no differencing VHD or VHDX (its vpc and vhdx drivers have no backing
files), and never a damaged image. These builders write them from the specifications
(VMware "Virtual Disk Format 1.1", Microsoft "VHD Image Format Specification", [MS-VHDX]),
with every field a parameter, so the hostile list can change one thing at a time and the
differencing tests can hold data of their own over a qemu-made parent. Their output is
cross-checked by an independent reader (libvhdi) in the tests.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Sequence

import google_crc32c

SECTOR = 512
KiB, MiB = 1 << 10, 1 << 20
GARBAGE = 0xEE  # bytes a reader must never return: sectors a bitmap says are not here

# --- VMDK ----------------------------------------------------------------------------------


def vmdk_descriptor(
    extents: Sequence[str],
    *,
    create_type: str = "monolithicFlat",
    cid: int = 0x1234ABCD,
    parent_cid: int = 0xFFFFFFFF,
    parent_hint: str | None = None,
) -> bytes:
    lines = [
        "# Disk DescriptorFile",
        "version=1",
        f"CID={cid:08x}",
        f"parentCID={parent_cid:08x}",
        f'createType="{create_type}"',
    ]
    if parent_hint is not None:
        lines.append(f'parentFileNameHint="{parent_hint}"')
    lines += ["", "# Extent description", *extents, "", "# The Disk Data Base", "#DDB", ""]
    lines.append('ddb.adapterType = "ide"')
    return ("\n".join(lines) + "\n").encode()


def vmdk_sparse(
    grains: dict[int, bytes],
    *,
    capacity: int = 2 * MiB,
    grain_sectors: int = 128,
    gtes: int = 512,
    version: int = 1,
    flags: int = 0x3,
    compress: bool = False,
    gd_offset: int | None = None,
    gd_entry: int | None = None,
    overhead: int | None = None,
    descriptor: bytes = b"",
    raw_grain: bytes | None = None,
) -> bytes:
    """A hosted sparse extent: header, descriptor, one grain directory, grain tables, grains.

    ``grains`` maps a grain index to its bytes (compressed with markers when ``compress``);
    ``raw_grain`` replaces the stored bytes of grain 0 as they are (a bomb, garbage).
    """
    grain_bytes = grain_sectors * SECTOR
    gd_count = -(-capacity // (gtes * grain_bytes))
    desc_sectors = -(-len(descriptor) // SECTOR) if descriptor else 0
    gd_sector = 1 + desc_sectors
    gt_sector = gd_sector + -(-gd_count * 4 // SECTOR)
    gt_sectors = gd_count * -(-gtes * 4 // SECTOR)
    data_sector = -(-(gt_sector + gt_sectors) // grain_sectors) * grain_sectors
    out = bytearray(data_sector * SECTOR)
    gt = [0] * (gd_count * gtes)
    for index, data in sorted(grains.items()):
        gt[index] = len(out) // SECTOR
        stored = raw_grain if raw_grain is not None and index == 0 else data
        if compress:
            body = stored if raw_grain is not None and index == 0 else zlib.compress(stored)
            stored = struct.pack("<QI", index * grain_sectors, len(body)) + body
        out += stored + bytes(-len(stored) % SECTOR)
    for i in range(gd_count):
        entry = gt_sector + i * -(-gtes * 4 // SECTOR)
        struct.pack_into(
            "<I", out, gd_sector * SECTOR + 4 * i, entry if gd_entry is None else gd_entry
        )
    for i, e in enumerate(gt):
        struct.pack_into("<I", out, gt_sector * SECTOR + 4 * i, e)
    out[SECTOR : SECTOR + len(descriptor)] = descriptor
    header = b"KDMV" + struct.pack(
        "<IIQQQQIQQQB4sH",
        version,
        flags | (0x30000 if compress else 0),
        capacity // SECTOR,
        grain_sectors,
        1 if descriptor else 0,
        desc_sectors,
        gtes,
        0,
        gd_sector if gd_offset is None else gd_offset,
        data_sector if overhead is None else overhead,
        0,
        b"\n \r\n",
        1 if compress else 0,
    )
    out[: len(header)] = header
    return bytes(out)


# --- VHD -----------------------------------------------------------------------------------


def vhd_checksum(data: bytes | bytearray, at: int) -> int:
    return ~(sum(data) - sum(data[at : at + 4])) & 0xFFFFFFFF


def vhd_footer(
    size: int,
    disk_type: int,
    unique_id: bytes,
    *,
    geometry: tuple[int, int, int] = (0, 0, 0),
    creator: bytes = b"win ",
    data_offset: int = SECTOR,
) -> bytes:
    footer = bytearray(
        struct.pack(
            ">8sIIQI4sI4sQQHBBII16sB",
            b"conectix",
            2,
            0x10000,
            data_offset,
            0,
            creator,
            0x10000,
            b"Wi2k",
            size,
            size,
            *geometry,
            disk_type,
            0,
            unique_id,
            0,
        )
    )
    footer += bytes(SECTOR - len(footer))
    struct.pack_into(">I", footer, 64, vhd_checksum(footer, 64))
    return bytes(footer)


def vhd_dynamic_header(
    bat_offset: int,
    entries: int,
    block: int,
    *,
    parent_id: bytes = bytes(16),
    parent_name: str = "",
) -> bytearray:
    """The 1024-byte dynamic disk header (VHD spec, "Dynamic Disk Header Format"), its
    checksum and parent locator entries left zero."""
    header = bytearray(1024)
    struct.pack_into(
        ">8sQQIIII16sII512s",
        header,
        0,
        b"cxsparse",
        0xFFFFFFFFFFFFFFFF,
        bat_offset,
        0x10000,
        entries,
        block,
        0,
        parent_id,
        0,
        0,
        parent_name.encode("utf-16-be"),
    )
    return header


def vhd_differencing(
    parent_footer: bytes,
    writes: Sequence[tuple[int, bytes]],
    *,
    locators: dict[bytes, bytes] | None = None,
    parent_id: bytes | None = None,
    parent_name: str = "base.vhd",
    block: int = 2 * MiB,
    bat_entry: int | None = None,
    header_checksum: int | None = None,
) -> bytes:
    """A differencing VHD over the disk whose footer is ``parent_footer``; ``writes`` are
    sector-aligned. Sectors of a written block that no write covers hold GARBAGE, their
    bitmap bits clear."""
    size = struct.unpack_from(">Q", parent_footer, 48)[0]
    cyl, heads, spt = struct.unpack_from(">HBB", parent_footer, 56)
    creator = parent_footer[28:32]
    pid = parent_footer[68:84] if parent_id is None else parent_id
    entries = -(-size // block)
    bat_offset = 3 * SECTOR
    loc_offset = bat_offset + -(-entries * 4 // SECTOR) * SECTOR
    if locators is None:
        locators = {
            b"W2ku": f"C:\\vms\\{parent_name}".encode("utf-16-le"),
            b"W2ru": f".\\{parent_name}".encode("utf-16-le"),
        }
    out = bytearray(loc_offset)
    loc_entries = []
    for code, data in locators.items():
        loc_entries.append((code, -(-len(data) // SECTOR) * SECTOR, len(data), len(out)))
        out += data + bytes(-len(data) % SECTOR)
    bitmap_bytes = -(-(block // SECTOR // 8) // SECTOR) * SECTOR
    blocks: dict[int, tuple[int, bytearray]] = {}
    bat = [0xFFFFFFFF] * entries
    for offset, data in writes:
        assert offset % SECTOR == 0 and len(data) % SECTOR == 0
        for pos in range(offset, offset + len(data), SECTOR):
            index, into = divmod(pos, block)
            if index not in blocks:
                bat[index] = len(out) // SECTOR
                blocks[index] = (len(out), bytearray(bitmap_bytes))
                out += bytes(bitmap_bytes) + bytes([GARBAGE]) * block
            at, bitmap = blocks[index]
            s = into // SECTOR
            bitmap[s // 8] |= 0x80 >> (s % 8)
            out[at + bitmap_bytes + into : at + bitmap_bytes + into + SECTOR] = data[
                pos - offset : pos - offset + SECTOR
            ]
    for at, bitmap in blocks.values():
        out[at : at + bitmap_bytes] = bitmap
    if bat_entry is not None:
        bat[0] = bat_entry
    for i, e in enumerate(bat):
        struct.pack_into(">I", out, bat_offset + 4 * i, e)
    header = vhd_dynamic_header(bat_offset, entries, block, parent_id=pid, parent_name=parent_name)
    for i, (code, space, length, offset) in enumerate(loc_entries):
        struct.pack_into(">4sIIIQ", header, 576 + 24 * i, code, space, length, 0, offset)
    check = vhd_checksum(header, 36) if header_checksum is None else header_checksum
    struct.pack_into(">I", header, 36, check)
    footer = vhd_footer(size, 4, uuid.uuid4().bytes, geometry=(cyl, heads, spt), creator=creator)
    out[0:SECTOR] = footer
    out[SECTOR : SECTOR + 1024] = header
    return bytes(out + footer)


# --- VHDX ----------------------------------------------------------------------------------

BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
METADATA_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
PAGE83 = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746").bytes_le
LOGICAL = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le
PHYSICAL = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556").bytes_le
LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le
LOCATOR_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913").bytes_le


def _crc_into(buf: bytearray, start: int, length: int) -> None:
    struct.pack_into("<I", buf, start + 4, 0)
    struct.pack_into("<I", buf, start + 4, google_crc32c.value(bytes(buf[start : start + length])))


def vhdx_header(buf: bytearray, at: int, seq: int, data_write: bytes, log_guid: bytes) -> None:
    struct.pack_into(
        "<4sIQ16s16s16sHHIQ",
        buf,
        at,
        b"head",
        0,
        seq,
        uuid.uuid4().bytes_le,
        data_write,
        log_guid,
        0,
        1,
        MiB,
        MiB,
    )
    _crc_into(buf, at, 4 * KiB)


def vhdx_locator(pairs: dict[str, str]) -> bytes:
    keys = b""
    entries = []
    base = 20 + 12 * len(pairs)
    for k, v in pairs.items():
        kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
        entries.append((base + len(keys), base + len(keys) + len(kb), len(kb), len(vb)))
        keys += kb + vb
    head = struct.pack("<16sHH", LOCATOR_TYPE, 0, len(pairs))
    return head + b"".join(struct.pack("<IIHH", *e) for e in entries) + keys


def vhdx_image(
    size: int,
    blocks: dict[int, tuple[int, bytes, bytes | None]],
    *,
    block: int = 1 * MiB,
    locator: dict[str, str] | None = None,
    data_write: bytes | None = None,
    log_guid: bytes = bytes(16),
    extra_region: tuple[bytes, int] | None = None,
    extra_metadata: tuple[bytes, int] | None = None,
    block_size_field: int | None = None,
    bat_offset: int = 3 * MiB,
    region_bat_offset: int | None = None,
    bat_override: dict[int, int] | None = None,
    item_length: tuple[int, int] | None = None,
    bad_headers: bool = False,
) -> bytes:
    """A VHDX: ``blocks`` maps a payload block index to (state, data, sector bitmap bits of
    the block or None). With ``locator`` it is differencing (HasParent)."""
    ratio = (1 << 23) * SECTOR // block
    payload = -(-size // block)
    if locator is not None:
        entries = -(-payload // ratio) * (ratio + 1)
    else:
        entries = payload + (payload - 1) // ratio
    out = bytearray(4 * MiB)
    out[0:8] = b"vhdxfile"
    out[8:40] = "filerestore".encode("utf-16-le").ljust(32, b"\0")
    dw = data_write or uuid.uuid4().bytes_le
    vhdx_header(out, 64 * KiB, 1, dw, log_guid)
    vhdx_header(out, 128 * KiB, 2, dw, log_guid)
    if bad_headers:
        out[64 * KiB + 8] ^= 1
        out[128 * KiB + 8] ^= 1
    bat_at = bat_offset if region_bat_offset is None else region_bat_offset
    regions = [(BAT_GUID, bat_at, MiB, 1), (METADATA_GUID, 2 * MiB, MiB, 1)]
    if extra_region is not None:
        regions.append((extra_region[0], 5 * MiB, MiB, extra_region[1]))
    for at in (192 * KiB, 256 * KiB):
        struct.pack_into("<4sIII", out, at, b"regi", 0, len(regions), 0)
        for i, r in enumerate(regions):
            struct.pack_into("<16sQII", out, at + 16 + 32 * i, *r)
        _crc_into(out, at, 64 * KiB)
    items = [
        (
            FILE_PARAMETERS,
            struct.pack("<II", block_size_field or block, 2 if locator is not None else 0),
            4,
        ),
        (DISK_SIZE, struct.pack("<Q", size), 6),
        (PAGE83, uuid.uuid4().bytes_le, 6),
        (LOGICAL, struct.pack("<I", SECTOR), 6),
        (PHYSICAL, struct.pack("<I", 4096), 4),
    ]
    if locator is not None:
        items.append((LOCATOR, vhdx_locator(locator), 4))
    if extra_metadata is not None:
        items.append((extra_metadata[0], b"\0" * 8, extra_metadata[1]))
    meta = 2 * MiB
    struct.pack_into("<8sHH", out, meta, b"metadata", 0, len(items))
    at = 64 * KiB
    for i, (guid, data, flags) in enumerate(items):
        length = item_length[1] if item_length is not None and item_length[0] == i else len(data)
        struct.pack_into("<16sIII", out, meta + 32 + 32 * i, guid, at, length, flags)
        out[meta + at : meta + at + len(data)] = data
        at += -(-len(data) // 4096) * 4096
    bat = [0] * entries
    bitmaps: dict[int, bytearray] = {}
    for index, (state, data, bits) in sorted(blocks.items()):
        entry = index + index // ratio
        if data:
            offset = len(out)
            out += data + bytes(block - len(data))
            bat[entry] = offset | state
        else:
            bat[entry] = state
        if bits is not None:
            chunk = index // ratio
            bm = bitmaps.setdefault(chunk, bytearray(MiB))
            first = (index % ratio) * (block // SECTOR)
            for i in range(block // SECTOR):
                if bits[i // 8] >> (i % 8) & 1:
                    bm[(first + i) // 8] |= 1 << ((first + i) % 8)
    for chunk, bm in bitmaps.items():
        bat[chunk * (ratio + 1) + ratio] = len(out) | 6
        out += bm
    for i, e in (bat_override or {}).items():
        bat[i] = e
    for i, e in enumerate(bat):
        struct.pack_into("<Q", out, bat_offset + 8 * i, e)
    return bytes(out)


def vhdx_data_write_guid(image: bytes) -> bytes:
    """The data write GUID of the current (greater sequence) header of a VHDX."""
    heads = [image[o : o + 4096] for o in (64 * KiB, 128 * KiB)]
    best = max(heads, key=lambda h: struct.unpack_from("<Q", h, 8)[0])
    return best[32:48]
