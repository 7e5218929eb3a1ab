"""Volume harnesses: partition tables and LVM2 labels on damaged disks; LVM2 metadata text.

``volume``: the seeds are the test suite's own disks (GPT, GPT on 4096-byte sectors, MBR
with logical partitions, LVM2 on GPT, on a logical MBR partition and on the whole disk),
damaged as :mod:`fuzz.patches` describes, aimed at the first and last MiB of the disk and the
first MiB of every volume (tables, EBRs, PV labels, metadata areas). Per input:
``list_volumes``, then the first and last sector of each volume and filesystem detection on
it. Only a partition-table, LVM-metadata or unavailable-volume error may come out.

``lvm_text``: the input is metadata text, parsed into a volume group whose logical volumes
are then mapped onto physical volumes made up to match (so the segment arithmetic runs)
and read at their first and last byte.
"""

from __future__ import annotations

from pathlib import Path

from filerestore.blockio import FileReader, Reader, ZeroReader
from filerestore.errors import LvmMetadataError, PartitionTableError, VolumeUnavailableError
from filerestore.fs import detect_filesystem
from filerestore.volume import list_volumes
from filerestore.volume.lv_reader import LogicalVolumeReader
from filerestore.volume.lvm import (
    LABEL_SCAN_SECTORS,
    SECTOR,
    PhysicalVolume,
    PvLabel,
    logical_volumes,
    parse_label,
    read_metadata_text,
)
from filerestore.volume.lvm_metadata import parse_config, volume_group
from fuzz import checksums
from fuzz.checksums import Fixup
from fuzz.harness import Harness, OneInput, require
from fuzz.patches import PatchedReader, Seed, decode, make_seed

MiB = 1 << 20


def _disks() -> dict[str, Path]:
    from tests.imagebuild import disk, lvm_disks

    return {
        "gpt": disk.gpt_disk(),
        "gpt4k": disk.gpt4k_disk() / "disk.img",
        "mbr": disk.mbr_disk(),
        "lvm-gpt": lvm_disks.lvm_gpt_disk() / "disk.img",
        "lvm-mbr": lvm_disks.lvm_mbr_disk() / "disk.img",
        "lvm-whole": lvm_disks.lvm_whole_disk() / "disk.img",
    }


def _layout(path: Path) -> tuple[list[tuple[int, int]], Fixup]:
    """Where the seed's metadata is (the first and last MiB of the disk and the first MiB of
    each volume), and its checksum fix-up (GPT, and LVM labels at the disk's and each
    partition's start)."""
    size = path.stat().st_size
    regions = [(0, MiB), (size - MiB, size)]
    starts = [0]
    with FileReader(path) as reader:
        for v in list_volumes(reader):
            if v.offset is not None:
                regions.append((v.offset, v.offset + MiB))
                if v.scheme in ("gpt", "mbr"):
                    starts.append(v.offset)
    lvm_fix = checksums.lvm(starts)

    def fixup(disk: Reader, patches: tuple[checksums.Patch, ...]) -> list[checksums.Patch]:
        return checksums.gpt(disk, patches) + lvm_fix(disk, patches)

    return regions, fixup


def _check_volumes(disk: Reader) -> None:
    for v in list_volumes(disk):
        require(v.size >= 0 and v.reader.size == v.size, f"volume {v.id} size {v.size}")
        if v.offset is not None:
            require(v.offset + v.size <= disk.size, f"volume {v.id} ends past the disk")
        if v.error is not None or v.is_container:
            continue
        head = v.reader.read_at(0, 4096)
        require(len(head) == min(4096, v.size), f"volume {v.id} head read {len(head)}")
        if v.size:
            require(len(v.reader.read_at(v.size - 1, SECTOR)) == 1, f"volume {v.id} last byte")
        detect_filesystem(v.reader)


def volume_setup() -> OneInput:
    loaded: list[Seed] = [make_seed(n, p, *_layout(p)) for n, p in _disks().items()]
    files = [FileReader(s.path) for s in loaded]

    def one(data: bytes) -> None:
        damage = decode(data, loaded)
        _check_volumes(PatchedReader(files[damage.seed], damage, loaded[damage.seed].fixup))

    return one


VOLUME = Harness(
    name="volume",
    doc="volume: GPT, MBR and LVM2 labels and metadata areas on damaged test disks",
    setup=volume_setup,
    seeds=lambda: [bytes([i | flag]) for i in range(6) for flag in (0, 0x40)],
    expected=(PartitionTableError, LvmMetadataError, VolumeUnavailableError),
    dictionary=(b"EFI PART", b"\x55\xaa", b"LABELONE", b"LVM2 001", b" LVM2 x[5A%r0N*>", b"\xee"),
)


# --- the metadata text ----------------------------------------------------------------------


def _map_text(text: str) -> None:
    vg = volume_group(parse_config(text))
    found = [PhysicalVolume(PvLabel(ref.uuid, 0, (), ()), 0, 1 << 62, vg) for ref in vg.pvs[:4]]
    for lv in logical_volumes(found):
        if lv.error is not None:
            continue
        reader = LogicalVolumeReader(ZeroReader(1 << 62), lv.segments)
        require(reader.size == lv.size, f"LV {lv.name} reader size {reader.size} != {lv.size}")
        if lv.size:
            for offset in (0, lv.size // 2, lv.size - 1):
                got = reader.read_at(offset, 2)
                require(len(got) == min(2, lv.size - offset), f"LV {lv.name} read at {offset}")


def lvm_text_setup() -> OneInput:
    def one(data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return  # read_metadata_text refuses such text before it is parsed
        _map_text(text)

    return one


def metadata_texts() -> list[bytes]:
    """The committed metadata texts of the LVM test disks (written by the LVM tools)."""
    out: list[bytes] = []
    for name, path in _disks().items():
        if not name.startswith("lvm"):
            continue
        with FileReader(path) as disk:
            readable = [v for v in list_volumes(disk) if v.error is None and not v.is_container]
            for v in [*readable, None]:
                reader: Reader = disk if v is None else v.reader
                label = parse_label(reader.read_at(0, LABEL_SCAN_SECTORS * SECTOR))
                for mda in label.metadata_areas if label else ():
                    text = read_metadata_text(reader, mda)
                    if text is not None:
                        out.append(text.encode())
    return sorted(set(out))


LVM_TEXT = Harness(
    name="lvm_text",
    doc="lvm_text: LVM2 metadata text parsed and its logical volumes mapped",
    setup=lvm_text_setup,
    seeds=metadata_texts,
    expected=(LvmMetadataError,),
    timeout=5,
    rss_budget_mb=256,
    max_len=64 * 1024,
    dictionary=(
        b"physical_volumes",
        b"logical_volumes",
        b"segment1",
        b"start_extent",
        b"extent_count",
        b"stripe_count",
        b"stripe_size",
        b"stripes",
        b'"striped"',
        b"pe_start",
        b"pe_count",
        b"extent_size",
        b"seqno",
        b'"VISIBLE"',
        b'"MISSING"',
        b"status",
        b"flags",
    ),
)
