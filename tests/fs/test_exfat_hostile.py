"""exFAT directories changed byte by byte: entries sharing one name are all listed (none is
hidden behind another), nothing after the end-of-directory entry is listed, and a directory
larger than the specification allows is refused.

The root directory's entry sets are located by scanning its bytes here (exFAT spec 6-7), and
what each renamed entry should hold comes from the source tree.
"""

from __future__ import annotations

import struct

import pytest

from filerestore.blockio import BytesReader
from filerestore.errors import FilesystemError
from filerestore.fs import exfat
from filerestore.fs.entry import EntryKind
from tests.imagebuild import fs_windows
from tests.imagebuild.fs_windows import BuiltImage

ENTRY = 32


@pytest.fixture(scope="module")
def img() -> BuiltImage:
    return fs_windows.exfat_image()


def root_sets(data: bytes) -> list[tuple[int, str]]:
    """(byte offset, name) of each File entry set in the root directory's first cluster."""
    heap = struct.unpack_from("<I", data, 88)[0] << data[108]
    cluster = 1 << (data[108] + data[109])
    root = struct.unpack_from("<I", data, 96)[0]
    start = heap + (root - 2) * cluster
    out = []
    for pos in range(start, start + cluster, ENTRY):
        if data[pos] == 0x00:
            break
        if data[pos] != 0x85:
            continue
        count, name_length = data[pos + 1], data[pos + ENTRY + 3]
        chars = b"".join(
            data[p + 2 : p + ENTRY]
            for p in range(pos + 2 * ENTRY, pos + (count + 1) * ENTRY, ENTRY)
        )
        out.append((pos, chars[: 2 * name_length].decode("utf-16-le")))
    return out


def name_hash(name: str) -> int:
    """NameHash (spec 7.6.4) of an ASCII name: over its up-cased UTF-16LE bytes."""
    value = 0
    for byte in name.upper().encode("utf-16-le"):
        value = (((value << 15) | (value >> 1)) + byte) & 0xFFFF
    return value


def reseal(data: bytearray, pos: int) -> None:
    """SetChecksum (spec 6.3.3) over the set, skipping the checksum field."""
    count = data[pos + 1]
    raw = data[pos : pos + (count + 1) * ENTRY]
    checksum = 0
    for i, byte in enumerate(raw):
        if i not in (2, 3):
            checksum = (((checksum << 15) | (checksum >> 1)) + byte) & 0xFFFF
    struct.pack_into("<H", data, pos + 2, checksum)


def rename(data: bytearray, pos: int, name: str) -> None:
    stream, first_name = pos + ENTRY, pos + 2 * ENTRY
    data[stream + 3] = len(name)
    struct.pack_into("<H", data, stream + 4, name_hash(name))
    data[first_name + 2 : first_name + ENTRY] = name.encode("utf-16-le").ljust(30, b"\0")
    reseal(data, pos)


def test_entries_sharing_one_name_are_all_listed(img: BuiltImage) -> None:
    data = bytearray(img.image.read_bytes())
    sets = dict((name, pos) for pos, name in root_sets(bytes(data)))
    renamed = [n for n in sorted(sets, key=sets.__getitem__) if n in ("hello.txt", "docs", "empty")]
    assert len(renamed) == 3
    for name in renamed:
        rename(data, sets[name], "dup")
    fs = exfat.open_fs(BytesReader(bytes(data)))
    listed = {e.name: e for e in fs.list_dir("/")}
    shown = ["dup", "dup<duplicate-2>", "dup<duplicate-3>"]
    assert [n for n in listed if n.startswith("dup")] == shown
    for shown_name, original in zip(shown, renamed, strict=True):
        source = img.tree / original
        entry = listed[shown_name]
        if source.is_dir():
            assert entry.kind is EntryKind.DIR
            want = {p.name for p in source.iterdir()}
            assert {e.name for e in fs.list_dir(f"/{shown_name}")} == want
        else:
            assert entry.kind is EntryKind.FILE
            reader = fs.open(f"/{shown_name}")
            assert reader.read_at(0, reader.size) == source.read_bytes()


def test_nothing_after_the_end_of_directory_entry_is_listed(img: BuiltImage) -> None:
    data = bytearray(img.image.read_bytes())
    sets = root_sets(bytes(data))
    assert len(sets) > 4
    cut, _ = sets[3]
    data[cut] = 0x00  # EntryType 0: end of directory (spec 6.2.1.1)
    fs = exfat.open_fs(BytesReader(bytes(data)))
    assert sorted(e.name for e in fs.list_dir("/")) == sorted(n for _, n in sets[:3])


def test_directory_larger_than_256_mib_is_refused(img: BuiltImage) -> None:
    data = bytearray(img.image.read_bytes())
    pos = dict((n, p) for p, n in root_sets(bytes(data)))["docs"]
    struct.pack_into("<Q", data, pos + ENTRY + 8, 512 << 20)  # ValidDataLength
    struct.pack_into("<Q", data, pos + ENTRY + 24, 512 << 20)  # DataLength
    reseal(data, pos)
    fs = exfat.open_fs(BytesReader(bytes(data)))
    with pytest.raises(FilesystemError, match="more than the 256 MiB a directory can hold"):
        list(fs.list_dir("/docs"))
