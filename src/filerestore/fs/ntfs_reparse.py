# References: [MS-FSCC] 2.1.2.1 (reparse tags) and 2.1.2.2 (REPARSE_DATA_BUFFER); Microsoft's
# wofapi.h documentation (WOF_EXTERNAL_INFO, WOF_PROVIDER_WIM = 1, WOF_PROVIDER_FILE = 2,
# FILE_PROVIDER_EXTERNAL_INFO_V1 and its FILE_PROVIDER_COMPRESSION_* algorithms); libfsntfs
# "NTFS" documentation (MFT entry header, update sequence array, attribute headers,
# $ATTRIBUTE_LIST entries).
"""Where an NTFS reparse point keeps a file's data, and the raw reparse data it needs.

A reparse point hands a file to a filter driver that Windows runs and we do not: the data a
user sees may be in the cloud (OneDrive placeholders), in a deduplication chunk store, in an
external WIM (WIMBoot), in a hierarchical storage manager. The file's own ``$DATA`` is then
sparse, and reading it would return zeros. :func:`data_location` names where the data is;
the NTFS backend lists the file with that marker and refuses to read it.

WOF ("Compact OS") with the file provider keeps the data on this volume, compressed in the
``WofCompressedData`` stream: libfsntfs decompresses it (XPRESS4K/8K/16K and LZX, checked
byte for byte against files compressed by wimlib); only the WIM provider's data is elsewhere.

libfsntfs gives a reparse point's tag but not its data, so the data (resident in the MFT
entry, at most 16 KiB) is read here from the raw entry.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterator

# [MS-FSCC] 2.1.2.1 reparse tags whose data lives outside the volume (or in a store on it
# that only the filter driver reads)
IO_REPARSE_TAG_HSM = 0xC0000004
IO_REPARSE_TAG_HSM2 = 0x80000006
IO_REPARSE_TAG_SIS = 0x80000007
IO_REPARSE_TAG_DEDUP = 0x80000013
IO_REPARSE_TAG_FILE_PLACEHOLDER = 0x80000015  # Windows 8.1 OneDrive placeholders
IO_REPARSE_TAG_WOF = 0x80000017
IO_REPARSE_TAG_WCI = 0x80000018
IO_REPARSE_TAG_WCI_1 = 0x90001018
IO_REPARSE_TAG_CLOUD = 0x9000001A  # CLOUD_1 .. CLOUD_F add 0x1000 .. 0xF000
CLOUD_TAG_MASK = 0xFFFF0FFF
IO_REPARSE_TAG_PROJFS = 0x9000001C
IO_REPARSE_TAG_STORAGE_SYNC = 0x8000001E  # Azure File Sync cloud tiering
IO_REPARSE_TAG_ONEDRIVE = 0x80000021

ELSEWHERE = {
    IO_REPARSE_TAG_HSM: "hsm",
    IO_REPARSE_TAG_HSM2: "hsm",
    IO_REPARSE_TAG_SIS: "sis",
    IO_REPARSE_TAG_DEDUP: "dedup",
    IO_REPARSE_TAG_FILE_PLACEHOLDER: "cloud",
    IO_REPARSE_TAG_WCI: "container",
    IO_REPARSE_TAG_WCI_1: "container",
    IO_REPARSE_TAG_CLOUD: "cloud",
    IO_REPARSE_TAG_PROJFS: "projfs",
    IO_REPARSE_TAG_STORAGE_SYNC: "cloud",
    IO_REPARSE_TAG_ONEDRIVE: "cloud",
}

# tags whose file keeps its data (or has none) in its own $DATA: links and WSL special
# files ([MS-FSCC] 2.1.2.1: MOUNT_POINT, SYMLINK, NFS, DFS, DFSR, APPEXECLINK, LX_SYMLINK,
# AF_UNIX, LX_FIFO, LX_CHR, LX_BLK)
DATA_HERE = frozenset(
    {
        0xA0000003,
        0xA000000C,
        0x80000014,
        0x8000000A,
        0x80000012,
        0x8000001B,
        0xA000001D,
        0x80000023,
        0x80000024,
        0x80000025,
        0x80000026,
    }
)

# wofapi.h
WOF_PROVIDER_WIM = 1
WOF_PROVIDER_FILE = 2
WOF_ALGORITHMS = {0: "XPRESS4K", 1: "LZX", 2: "XPRESS8K", 3: "XPRESS16K"}
WOF_STREAM = "WofCompressedData"


def wof_provider(data: bytes) -> tuple[int, int | None]:
    """(provider, algorithm) of a WOF reparse buffer's data (after its 8-byte header):
    WOF_EXTERNAL_INFO {version, provider}, then for the file provider
    FILE_PROVIDER_EXTERNAL_INFO_V1 {version, algorithm}. (0, None) if it is too short."""
    if len(data) < 8:
        return 0, None
    _, provider = struct.unpack_from("<II", data, 0)
    if provider == WOF_PROVIDER_FILE and len(data) >= 16:
        _, algorithm = struct.unpack_from("<II", data, 8)
        return provider, algorithm
    return provider, None


def data_location(tag: int, data: bytes | None, all_here: Callable[[], bool]) -> str | None:
    """Where a reparse point's file keeps its data (a key of entry.DATA_LOCATIONS), or None
    when it can be read from this volume.

    ``data`` is the reparse data (None if it could not be read); ``all_here()`` tells whether
    the file's own $DATA has every byte allocated: a hydrated cloud file (OneDrive "always
    keep on this device") still carries its tag but holds all its data, and is readable.
    """
    if tag in DATA_HERE:
        return None
    if tag == IO_REPARSE_TAG_WOF:
        provider, _ = wof_provider(data or b"")
        if provider == WOF_PROVIDER_FILE:
            return None  # compressed in WofCompressedData, read by libfsntfs
        return "wim" if provider == WOF_PROVIDER_WIM else "reparse"
    if all_here():
        return None
    return ELSEWHERE.get(tag & CLOUD_TAG_MASK, ELSEWHERE.get(tag, "reparse"))


# --- the raw MFT entry ------------------------------------------------------------------------

TYPE_ATTRIBUTE_LIST = 0x20
TYPE_REPARSE_POINT = 0xC0
END_OF_ATTRIBUTES = 0xFFFFFFFF
MFT_INDEX_MASK = (1 << 48) - 1
SECTOR = 512  # the update sequence protects the last 2 bytes of every 512 bytes


def apply_fixups(record: bytes, magic: bytes = b"FILE") -> bytes | None:
    """An MFT entry (or, with ``magic`` b"INDX", an index block) with its update sequence
    array applied; None if it is not a valid one."""
    if record[:4] != magic or len(record) < 48:
        return None
    usa_offset, usa_count = struct.unpack_from("<HH", record, 4)
    if usa_count < 1 or usa_offset + 2 * usa_count > len(record):
        return None
    out = bytearray(record)
    usn = record[usa_offset : usa_offset + 2]
    for i in range(1, usa_count):
        end = i * SECTOR
        if end > len(out) or out[end - 2 : end] != usn:
            return None
        out[end - 2 : end] = record[usa_offset + 2 * i : usa_offset + 2 * i + 2]
    return bytes(out)


def attributes(record: bytes) -> Iterator[tuple[int, int, int]]:
    """(type, offset, length) of each attribute of a fixed-up MFT entry, up to the end
    marker; ValueError at an attribute that runs out of the entry's used bytes."""
    (first,) = struct.unpack_from("<H", record, 0x14)
    (in_use,) = struct.unpack_from("<I", record, 0x18)
    end = min(in_use, len(record))
    pos = first
    while pos + 16 <= end:
        kind, length = struct.unpack_from("<II", record, pos)
        if kind == END_OF_ATTRIBUTES:
            return
        if length < 16 or pos + length > end:
            raise ValueError(f"MFT attribute out of bounds at byte {pos}")
        yield kind, pos, length
        pos += length


def resident_values(record: bytes, attr_type: int) -> list[bytes]:
    """The values of the resident attributes of ``attr_type`` in a fixed-up MFT entry (those
    before an attribute out of bounds)."""
    out: list[bytes] = []
    with contextlib.suppress(ValueError):
        for kind, pos, length in attributes(record):
            if kind == attr_type and record[pos + 8] == 0 and length >= 24:
                size, offset = struct.unpack_from("<IH", record, pos + 0x10)
                if offset + size <= length:
                    out.append(record[pos + offset : pos + offset + size])
    return out


def list_references(attribute_list: bytes, attr_type: int) -> list[int]:
    """MFT indices of the entries an $ATTRIBUTE_LIST says hold attributes of ``attr_type``."""
    out: list[int] = []
    pos = 0
    while pos + 26 <= len(attribute_list):
        kind, length = struct.unpack_from("<IH", attribute_list, pos)
        if length < 26:
            break
        if kind == attr_type:
            (ref,) = struct.unpack_from("<Q", attribute_list, pos + 0x10)
            out.append(ref & MFT_INDEX_MASK)
        pos += length
    return out


def reparse_data(read_entry: Callable[[int], bytes | None], index: int) -> bytes | None:
    """The reparse data (after the 8-byte tag/length header) of MFT entry ``index``, from
    its base entry or, through a resident $ATTRIBUTE_LIST, an extension entry."""
    base = read_entry(index)
    if base is None:
        return None
    values = resident_values(base, TYPE_REPARSE_POINT)
    if not values:
        for attribute_list in resident_values(base, TYPE_ATTRIBUTE_LIST):
            for ref in list_references(attribute_list, TYPE_REPARSE_POINT):
                extension = read_entry(ref) if ref != index else None
                if extension is not None:
                    values += resident_values(extension, TYPE_REPARSE_POINT)
    if not values or len(values[0]) < 8:
        return None
    return values[0][8:]
