"""Hostile and corrupt partition tables and LVM metadata, built byte by byte.

Every case must be refused with its specific error, and never read past the disk (how long
a refusal takes is a figure of the machine, not asserted here; bench/parse_times.py times
the LVM2 text parser).
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Callable

import pytest

from filerestore.blockio import BytesReader, FileReader
from filerestore.errors import LvmMetadataError, PartitionTableError, VolumeUnavailableError
from filerestore.volume import Volume, gpt, list_volumes, lvm
from tests.imagebuild.disk import gpt_disk, sfdisk_json, whole_disk
from tests.imagebuild.lvm_disks import lvm_whole_disk

SECTOR = 512


def refused(exc: type[Exception], match: str, fn: Callable[[], object]) -> None:
    with pytest.raises(exc, match=match):
        fn()


class Disk:
    """A disk image in memory, written sector by sector."""

    def __init__(self, sectors: int) -> None:
        self.data = bytearray(sectors * SECTOR)

    def put(self, offset: int, raw: bytes) -> None:
        self.data[offset : offset + len(raw)] = raw

    def reader(self) -> BytesReader:
        return BytesReader(bytes(self.data))

    def volumes(self) -> list[Volume]:
        return list_volumes(self.reader())


def mbr_sector(entries: list[tuple[int, int, int, int]], boot: bytes = b"") -> bytes:
    """A sector with partition entries (flag, type, start, count) and the 0x55AA signature."""
    s = bytearray(SECTOR)
    s[: len(boot)] = boot
    for i, (flag, ptype, start, count) in enumerate(entries):
        struct.pack_into(
            "<B3sB3sII", s, 446 + 16 * i, flag, bytes(3), ptype, bytes(3), start, count
        )
    s[510:512] = b"\x55\xaa"
    return bytes(s)


# --- MBR --------------------------------------------------------------------------------------


def extended_disk(ebrs: dict[int, bytes], ext_sectors: int = 8192) -> Disk:
    d = Disk(16384)
    d.put(0, mbr_sector([(0, 0x83, 63, 1900), (0, 0x05, 2048, ext_sectors)]))
    for sector, raw in ebrs.items():
        d.put(sector * SECTOR, raw)
    return d


def test_crafted_mbr_is_read_as_sfdisk_reads_it(tmp_path):
    # the byte builder itself, checked against sfdisk: a sane chain of two logicals
    d = extended_disk(
        {
            2048: mbr_sector([(0, 0x83, 63, 100), (0, 0x05, 1000, 200)]),
            3048: mbr_sector([(0, 0x07, 63, 100)]),
        }
    )
    img = tmp_path / "mbr.img"
    img.write_bytes(d.data)
    want = [(p["start"] * SECTOR, p["size"] * SECTOR) for p in sfdisk_json(img)["partitions"]]
    assert [(v.offset, v.size) for v in d.volumes()] == want
    assert [v.id for v in d.volumes()] == ["p1", "p2", "p5", "p6"]


def test_ebr_pointing_at_itself_is_refused():
    d = extended_disk({2048: mbr_sector([(0, 0x83, 63, 100), (0, 0x05, 0, 100)])})
    refused(PartitionTableError, "loops back to sector 2048", d.volumes)


def test_ebr_cycle_of_two_is_refused():
    d = extended_disk(
        {
            2048: mbr_sector([(0, 0x83, 63, 100), (0, 0x05, 1000, 200)]),
            3048: mbr_sector([(0, 0x83, 63, 100), (0, 0x05, 0, 200)]),
        }
    )
    refused(PartitionTableError, "loops back to sector 2048", d.volumes)


def test_endless_ebr_chain_is_refused():
    # 400 EBRs, each a one-sector logical partition and a link to the next: no loop, no end
    ebrs = {
        2048 + 2 * i: mbr_sector([(0, 0x83, 1, 1), (0, 0x05, 2 * (i + 1), 2)]) for i in range(400)
    }
    d = extended_disk(ebrs, ext_sectors=1000)
    refused(PartitionTableError, "longer than 256", d.volumes)


def test_ebr_link_leaving_the_extended_partition_is_refused():
    d = extended_disk({2048: mbr_sector([(0, 0x83, 63, 100), (0, 0x05, 9000, 100)])})
    refused(PartitionTableError, "leaves extended partition 2", d.volumes)


def test_logical_partition_outside_the_extended_partition_is_refused():
    d = extended_disk({2048: mbr_sector([(0, 0x83, 63, 9000)])})
    refused(PartitionTableError, "partition 5 .* outside extended partition 2", d.volumes)


def test_primary_partition_past_the_end_of_the_disk_is_refused():
    d = Disk(4096)
    d.put(0, mbr_sector([(0x80, 0x83, 2048, 1_000_000)]))
    refused(PartitionTableError, "partition 1 .* outside the disk", d.volumes)
    d.put(0, mbr_sector([(0, 0x83, 0xFFFFFFF0, 0x100)]))
    refused(PartitionTableError, "partition 1 .* outside the disk", d.volumes)


def test_overlapping_primaries_are_refused():
    d = Disk(8192)
    d.put(0, mbr_sector([(0, 0x83, 2048, 2048), (0, 0x07, 3000, 1000)]))
    refused(PartitionTableError, "partitions 1 and 2 overlap", d.volumes)


def test_protective_mbr_without_gpt_is_reported():
    d = Disk(8192)
    d.put(0, mbr_sector([(0, 0xEE, 1, 8191)]))
    refused(PartitionTableError, "protective MBR .* without a GPT", d.volumes)


def test_bad_boot_flag_means_no_mbr():
    d = Disk(8192)
    d.put(0, mbr_sector([(0x12, 0x83, 2048, 2048)]))
    assert [v.id for v in d.volumes()] == ["disk"]


def test_grub_style_mbr_with_jump_and_zero_bpb_is_an_mbr():
    # GRUB's boot.img starts with "jmp short; nop" like a VBR, but leaves the BPB zeroed
    d = Disk(8192)
    d.put(0, mbr_sector([(0x80, 0x83, 2048, 4096)], boot=b"\xeb\x63\x90"))
    assert [(v.id, v.offset) for v in d.volumes()] == [("p1", 2048 * SECTOR)]


@pytest.mark.parametrize("kind", ["fat", "ntfs", "exfat"])
def test_vbr_with_entry_like_bytes_is_not_an_mbr(kind):
    raw = bytearray(whole_disk(kind).read_bytes())
    # plausible partition entries where the boot code sits: still a filesystem, not a table
    raw[446:462] = struct.pack("<B3sB3sII", 0x80, bytes(3), 0x83, bytes(3), 2048, 4096)
    raw[510:512] = b"\x55\xaa"
    assert [v.id for v in list_volumes(BytesReader(bytes(raw)))] == ["disk"]


# --- GPT --------------------------------------------------------------------------------------


def gpt_header(
    my_lba: int,
    alt_lba: int,
    entry_lba: int,
    entries: bytes,
    sectors: int,
    num_entries: int = 128,
    entry_size: int = 128,
) -> bytes:
    """A GPT header (UEFI 2.10, table 5-5) with correct CRC32s."""
    fields = [
        b"EFI PART",
        0x10000,
        92,
        0,
        0,
        my_lba,
        alt_lba,
        34,
        sectors - 34,
        uuid.UUID(int=7).bytes_le,
        entry_lba,
        num_entries,
        entry_size,
        zlib.crc32(entries),
    ]
    fmt = "<8sIIII QQQQ 16s QIII"
    header = bytearray(struct.pack(fmt, *fields))
    struct.pack_into("<I", header, 16, zlib.crc32(header))
    return bytes(header)


def gpt_entries(parts: list[tuple[int, int, str]], count: int = 128) -> bytes:
    out = bytearray(count * 128)
    linux = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4").bytes_le
    for i, (first, last, name) in enumerate(parts):
        struct.pack_into(
            "<16s16sQQQ72s",
            out,
            i * 128,
            linux,
            uuid.UUID(int=i + 1).bytes_le,
            first,
            last,
            0,
            name.encode("utf-16-le"),
        )
    return bytes(out)


def crafted_gpt(parts: list[tuple[int, int, str]], sectors: int = 8192, **kw: int) -> Disk:
    d = Disk(sectors)
    d.put(0, mbr_sector([(0, 0xEE, 1, sectors - 1)]))
    entries = gpt_entries(parts)
    d.put(SECTOR, gpt_header(1, sectors - 1, 2, entries, sectors, **kw))
    d.put(2 * SECTOR, entries)
    return d


def test_crafted_gpt_is_read_as_sfdisk_reads_it(tmp_path):
    d = crafted_gpt([(2048, 4095, "one"), (4096, 6143, "two")])
    img = tmp_path / "gpt.img"
    img.write_bytes(d.data)
    want = [
        (p["start"] * SECTOR, p["size"] * SECTOR, p["name"]) for p in sfdisk_json(img)["partitions"]
    ]
    assert [(v.offset, v.size, v.label) for v in d.volumes()] == want


def test_bad_primary_header_falls_back_to_the_backup(tmp_path):
    clean = gpt_disk().read_bytes()
    want = [
        (v.id, v.offset, v.size, v.type, v.label, v.uuid) for v in list_volumes(BytesReader(clean))
    ]
    expected_ids = [f"p{i}" for i in range(1, 5)]
    assert [w[0] for w in want] == expected_ids
    # primary header's disk GUID; a byte of the entry array; the whole primary header sector
    for where in (
        range(SECTOR + 56, SECTOR + 57),
        range(2 * SECTOR + 40, 2 * SECTOR + 41),
        range(SECTOR, 2 * SECTOR),
    ):
        raw = bytearray(clean)
        for i in where:
            raw[i] = 0 if len(where) > 1 else raw[i] ^ 0xFF
        img = tmp_path / "bad.img"
        img.write_bytes(raw)
        # sfdisk agrees that the table is still readable, through its backup
        assert len(sfdisk_json(img)["partitions"]) == 4
        disk = BytesReader(bytes(raw))
        assert gpt.read_gpt(disk).used_backup
        got = [(v.id, v.offset, v.size, v.type, v.label, v.uuid) for v in list_volumes(disk)]
        assert got == want


def test_both_headers_bad_is_refused():
    raw = bytearray(gpt_disk().read_bytes())
    raw[SECTOR + 56] ^= 0xFF
    raw[len(raw) - SECTOR + 56] ^= 0xFF
    refused(
        PartitionTableError,
        "primary header .*CRC32.*backup header .*CRC32",
        lambda: list_volumes(BytesReader(bytes(raw))),
    )


def test_huge_number_of_gpt_entries_is_refused():
    d = crafted_gpt([(2048, 4095, "one")], num_entries=0x7FFFFFFF)
    refused(PartitionTableError, "claims 2147483647 entries", d.volumes)


def test_gpt_partition_past_the_end_is_refused():
    d = crafted_gpt([(2048, 100_000, "too long")])
    refused(PartitionTableError, "partition 1 ends at sector 100000, past the end", d.volumes)


def test_overlapping_gpt_partitions_are_refused():
    d = crafted_gpt([(2048, 4095, "one"), (4000, 5000, "two")])
    refused(PartitionTableError, "partitions 1 and 2 overlap", d.volumes)


def test_gpt_entry_array_outside_the_disk_is_refused():
    d = Disk(8192)
    entries = gpt_entries([(2048, 4095, "one")])
    d.put(SECTOR, gpt_header(1, 8191, 9000, entries, 8192))
    refused(PartitionTableError, "entry array lies outside the disk", d.volumes)


# --- LVM --------------------------------------------------------------------------------------

MDA = 4096  # pvcreate puts the first metadata area at 4 KiB


def pv_image() -> bytearray:
    return bytearray((lvm_whole_disk() / "disk.img").read_bytes())


def test_lvm_crc_matches_what_lvm_wrote():
    raw = pv_image()
    assert lvm.lvm_crc(bytes(raw[MDA + 4 : MDA + 512])) == struct.unpack_from("<I", raw, MDA)[0]
    label = bytes(raw[512:1024])
    assert label[:8] == b"LABELONE"
    assert lvm.lvm_crc(label[20:]) == struct.unpack_from("<I", label, 16)[0]


def with_metadata(raw: bytearray, text: bytes) -> bytes:
    """The PV image with ``text`` as its committed metadata, all checksums right."""
    out = bytearray(raw)
    out[MDA + 512 : MDA + 512 + len(text)] = text
    struct.pack_into("<QQII", out, MDA + 40, 512, len(text), lvm.lvm_crc(text), 0)
    struct.pack_into("<I", out, MDA, lvm.lvm_crc(bytes(out[MDA + 4 : MDA + 512])))
    return bytes(out)


def current_text(raw: bytearray) -> bytes:
    with FileReader(lvm_whole_disk() / "disk.img") as disk:
        label = lvm.parse_label(disk.read_at(0, 2048))
        assert label is not None
        text = lvm.read_metadata_text(disk, label.metadata_areas[0])
    assert text is not None and "vgdisk" in text
    return text.encode()


def test_rewritten_metadata_helper_keeps_the_volumes():
    raw = pv_image()
    rewritten = with_metadata(raw, current_text(raw))
    want = [(v.id, v.size) for v in list_volumes(BytesReader(bytes(raw)))]
    assert [(v.id, v.size) for v in list_volumes(BytesReader(rewritten))] == want
    assert len(want) == 3


def test_corrupt_lvm_label_is_refused():
    raw = pv_image()
    raw[512 + 40] ^= 0x01  # a byte of the PV uuid
    refused(LvmMetadataError, "label checksum", lambda: list_volumes(BytesReader(bytes(raw))))


def test_corrupt_metadata_area_header_is_refused():
    raw = pv_image()
    raw[MDA + 6] ^= 0x01  # the magic
    refused(LvmMetadataError, "no magic", lambda: list_volumes(BytesReader(bytes(raw))))


def test_metadata_text_with_bad_checksum_is_refused():
    raw = bytearray(with_metadata(pv_image(), current_text(pv_image())))
    raw[MDA + 600] ^= 0x20
    refused(LvmMetadataError, "text checksum", lambda: list_volumes(BytesReader(bytes(raw))))


def _edit(text: bytes, old: bytes, new: bytes) -> bytes:
    assert old in text
    return text.replace(old, new, 1)


GARBAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "random bytes": (lambda t: bytes(range(256)) * 4, "not UTF-8"),
    "unclosed section": (lambda t: t[: t.index(b"logical_volumes")], "not closed"),
    "nesting bomb": (lambda t: b"vg {" + b"a {" * 5000, "nests too deep"),
    "unterminated string": (lambda t: b'vg { id = "abc', "unexpected character"),
    "bare word value": (lambda t: b"vg { id = nonsense }", "bare word 'nonsense'"),
    "two groups": (
        lambda t: t + b'\nother { id = "x" seqno = 1 extent_size = 8 }\n',
        "holds 2 volume groups",
    ),
    "extent past the PV": (
        lambda t: _edit(t, b'"pv0", 15', b'"pv0", 200'),
        "maps past PV pv0's extents",
    ),
    "segment gap": (
        lambda t: _edit(t, b"start_extent = 4", b"start_extent = 5"),
        "gap or overlap",
    ),
    "stripe count mismatch": (
        lambda t: _edit(t, b"stripe_count = 1", b"stripe_count = 2"),
        "stripes do not match stripe_count",
    ),
    "unknown PV": (lambda t: _edit(t, b'"pv0", 10', b'"pv9", 10'), "unknown PV 'pv9'"),
    "PV extents past the partition": (
        lambda t: _edit(t, b"pe_start = ", b"pe_start = 1000000"),
        "maps past the end of PV pv0",
    ),
    "zero extent size": (
        lambda t: _edit(t, b"extent_size = 2048", b"extent_size = 0"),
        "extent_size = 0 is out of range",
    ),
    # issue 8, defect 5: Python's int() refuses more than 4,300 digits with a bare ValueError
    "number of 5,000 digits": (
        lambda t: t.replace(b"seqno = ", b"seqno = " + b"9" * 5000 + b" # ", 1),
        "does not fit in 64 bits",
    ),
    "number past 64 bits": (
        lambda t: t.replace(b"seqno = ", b"seqno = 18446744073709551616 # ", 1),
        "does not fit in 64 bits",
    ),
    "non-ASCII digits": (
        lambda t: t.replace(b"seqno = ", "seqno = \u0663 # ".encode(), 1),
        "bare word",
    ),
    "seqno is a string": (
        lambda t: t.replace(b"seqno = ", b'seqno = "x" # ', 1),
        "no valid 'seqno'",
    ),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_garbage_metadata_is_refused(case):
    raw = pv_image()
    mutate, message = GARBAGE[case]
    hostile = with_metadata(raw, mutate(current_text(raw)))
    refused(LvmMetadataError, message, lambda: list_volumes(BytesReader(hostile)))


@pytest.mark.parametrize("size", [0, 100, 512, 1536])
def test_tiny_disk_is_the_whole_disk(size):
    assert [(v.id, v.size) for v in list_volumes(BytesReader(bytes(size)))] == [("disk", size)]


def test_unsupported_segment_type_is_listed_unreadable_and_hidden_lvs_are_not_listed():
    raw = pv_image()
    text = current_text(raw)
    extra = (
        b'thinvol {\nid = "abcdef-0000-0000-0000-0000-0000-000000"\n'
        b'status = ["READ", "WRITE", "VISIBLE"]\nsegment1 {\nstart_extent = 0\n'
        b'extent_count = 3\ntype = "thin"\nthin_pool = "pool"\ntransaction_id = 1\n}\n}\n'
        b'hidden_rimage_0 {\nid = "abcdef-0000-0000-0000-0000-0000-000001"\n'
        b'status = ["READ", "WRITE"]\nsegment1 {\nstart_extent = 0\nextent_count = 1\n'
        b'type = "striped"\nstripe_count = 1\nstripes = ["pv0", 20]\n}\n}\n'
    )
    hostile = with_metadata(raw, _edit(text, b"logical_volumes {", b"logical_volumes {\n" + extra))
    volumes = {v.id: v for v in list_volumes(BytesReader(hostile))}
    assert sorted(volumes) == ["disk", "lvm/vgdisk/data", "lvm/vgdisk/flat", "lvm/vgdisk/thinvol"]
    thin = volumes["lvm/vgdisk/thinvol"]
    assert (thin.size, thin.type_name, thin.offset) == (3 * 1024 * 1024, "LVM thin", None)
    assert thin.error == "segment type 'thin' is not supported"
    with pytest.raises(VolumeUnavailableError, match="thinvol: segment type 'thin'"):
        thin.reader.read_at(0, 512)
    assert volumes["lvm/vgdisk/data"].error is None


def test_two_volume_groups_with_one_name_are_refused():
    # two copies of the PV, the second's VG given another uuid: the same name twice
    raw = pv_image()
    text = current_text(raw)
    vg_id = text.split(b'id = "', 1)[1].split(b'"', 1)[0]
    other = with_metadata(raw, text.replace(vg_id, b"Zzzzzz-zzzz-zzzz-zzzz-zzzz-zzzz-zzzzzz", 1))
    found = [lvm.scan_physical_volume(BytesReader(bytes(x)), 0) for x in (raw, other)]
    pvs = [pv for pv in found if pv is not None]
    assert len(pvs) == 2
    refused(
        LvmMetadataError,
        "two different volume groups are named 'vgdisk'",
        lambda: lvm.logical_volumes(pvs),
    )


def test_lvm_number_bomb_is_a_corrupt_image_for_the_cli(tmp_path):
    """The CLI's answer to the 5,000-digit number: exit 4 and one line, not exit 1 with
    "unexpected ValueError" (issue 8, defect 5)."""
    from tests.cli.runner import fails

    raw = pv_image()
    text = current_text(raw).replace(b"seqno = ", b"seqno = " + b"9" * 5000 + b" # ", 1)
    image = tmp_path / "pv-number-bomb.img"
    image.write_bytes(with_metadata(raw, text))
    line = fails(4, "inspect", image)
    assert "does not fit in 64 bits" in line
