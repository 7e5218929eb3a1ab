"""GPT and MBR tables made by sfdisk, and whole-disk filesystems: compared with sfdisk itself."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import VolumeNotFoundError
from filerestore.volume import Volume, find_volume, list_volumes
from tests.imagebuild.commands import run
from tests.imagebuild.disk import (
    GPT_LINUX,
    GPT_MSDATA,
    build_disk,
    gpt4k_disk,
    gpt_disk,
    mbr_disk,
    sfdisk_json,
    whole_disk,
)
from tests.imagebuild.small_fs import small_fs_image
from tests.imagebuild.tree import MiB


def sfdisk_type_names(path: Path) -> dict[str, str]:
    """Partition number -> the type name ``sfdisk -l`` prints."""
    out = run("sfdisk", "-l", "-o", "Device,Type", path)
    names = {}
    for line in out.splitlines():
        m = re.match(rf"{re.escape(str(path))}(\d+)\s+(.+?)\s*$", line)
        if m:
            names[f"p{m.group(1)}"] = m.group(2)
    return names


def expected_volumes(table: dict[str, Any], type_names: dict[str, str]) -> dict[str, Any]:
    """What sfdisk says each volume is, in our field names."""
    ss = table["sectorsize"]
    out = {}
    for p in table["partitions"]:
        number = re.search(r"(\d+)$", p["node"])
        assert number is not None
        vid = "p" + number.group(1)
        gpt = table["label"] == "gpt"
        out[vid] = {
            "scheme": "gpt" if gpt else "mbr",
            "offset": p["start"] * ss,
            "size": p["size"] * ss,
            "type": p["type"].lower() if gpt else f"0x{int(p['type'], 16):02x}",
            "label": p.get("name") or None,
            "uuid": p["uuid"].lower() if gpt else None,
        }
        if type_names:  # every partition must have its sfdisk name
            out[vid]["type_name"] = type_names[vid]
    return out


def actual(volumes: list[Volume], with_names: bool = True) -> dict[str, Any]:
    fields = ["scheme", "offset", "size", "type", "label", "uuid"]
    if with_names:
        fields.append("type_name")
    return {v.id: {f: getattr(v, f) for f in fields} for v in volumes}


def test_gpt_matches_sfdisk():
    path = gpt_disk()
    table = sfdisk_json(path)
    with FileReader(path) as disk:
        volumes = list_volumes(disk)
    assert actual(volumes) == expected_volumes(table, sfdisk_type_names(path))
    # slot 3 is listed after slot 4 in the script: ids follow slots, not disk order
    assert [v.id for v in volumes] == ["p1", "p2", "p3", "p4"]
    assert find_volume(volumes, "p4").label == "Données ☃"
    assert find_volume(volumes, "p1").type_name == "EFI System"


def test_gpt_4096_byte_sectors_matches_sfdisk():
    d = gpt4k_disk()
    table = json.loads((d / "sfdisk.json").read_text())
    assert table["sectorsize"] == 4096
    with FileReader(d / "disk.img") as disk:
        volumes = list_volumes(disk)
    assert actual(volumes, with_names=False) == expected_volumes(table, {})
    assert [v.type_name for v in volumes] == ["Linux filesystem", "Microsoft basic data"]


def test_mbr_with_logical_partitions_matches_sfdisk():
    path = mbr_disk()
    table = sfdisk_json(path)
    names = sfdisk_type_names(path)
    with FileReader(path) as disk:
        volumes = list_volumes(disk)
    assert actual(volumes) == expected_volumes(table, names)
    assert [v.id for v in volumes] == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    ext = find_volume(volumes, "p4")
    assert (ext.type, ext.type_name, ext.is_container) == ("0x05", "Extended", True)
    assert not any(v.is_container for v in volumes if v.id != "p4")
    assert find_volume(volumes, "p2").type_name == "W95 FAT32 (LBA)"


def test_partition_reader_reads_the_partition_bytes():
    path = mbr_disk()
    raw = path.read_bytes()
    with FileReader(path) as disk:
        for v in list_volumes(disk):
            assert v.reader.size == v.size
            assert v.offset is not None
            assert v.reader.read_at(0, 4096) == raw[v.offset : v.offset + 4096]
            tail = v.reader.read_at(v.size - 100, 1000)  # clamped at the partition's end
            assert tail == raw[v.offset + v.size - 100 : v.offset + v.size]


@pytest.mark.parametrize(
    ("kind", "blkid_type"),
    [
        ("fat", "vfat"),
        ("fat16", "vfat"),
        ("ntfs", "ntfs"),
        ("exfat", "exfat"),
    ],
)
def test_whole_disk_filesystem_is_not_a_partition_table(kind, blkid_type):
    path = whole_disk(kind)
    # the witnesses: sfdisk finds no partition, blkid finds the filesystem at offset 0
    done = subprocess.run(["sfdisk", "--json", path], capture_output=True, text=True)
    partitions = (
        json.loads(done.stdout)["partitiontable"].get("partitions", []) if done.stdout else []
    )
    assert partitions == []
    assert f"TYPE={blkid_type}" in run("blkid", "-p", "-o", "export", path).splitlines()
    with FileReader(path) as disk:
        volumes = list_volumes(disk)
        assert [(v.id, v.scheme, v.offset, v.size) for v in volumes] == [
            ("disk", "disk", 0, path.stat().st_size)
        ]
        assert volumes[0].reader.read_at(0, 512) == path.read_bytes()[:512]


def test_find_volume_lists_the_ids_there_are():
    with FileReader(mbr_disk()) as disk:
        volumes = list_volumes(disk)
    with pytest.raises(VolumeNotFoundError, match=r"'p9'.*p1, p2, p3, p4, p5, p6, p7"):
        find_volume(volumes, "p9")


# --- build_disk, the helper other layers use ------------------------------------------------


@pytest.mark.parametrize("table", ["gpt", "mbr"])
def test_build_disk_lays_images_into_partitions(table):
    ext4, fat = small_fs_image("ext4"), small_fs_image("fat")
    parts: list[tuple[int, str, str | None, Path | None]]
    if table == "gpt":
        parts = [
            (8 * MiB, GPT_LINUX, "linux", ext4),
            (4 * MiB, GPT_MSDATA, "empty", None),
            (8 * MiB, GPT_MSDATA, "fat", fat),
        ]
    else:  # five partitions: three primaries, an extended, two logicals
        parts = [
            (8 * MiB, "83", None, ext4),
            (2 * MiB, "83", None, None),
            (2 * MiB, "83", None, None),
            (2 * MiB, "83", None, None),
            (8 * MiB, "c", None, fat),
        ]
    path = build_disk(table, parts)
    sf = sfdisk_json(path)
    disk = FileReader(path)
    volumes = list_volumes(disk)
    assert actual(volumes) == expected_volumes(sf, sfdisk_type_names(path))
    data_ids = ["p1", "p2", "p3"] if table == "gpt" else ["p1", "p2", "p3", "p5", "p6"]
    for vid, (size, _t, _n, img) in zip(data_ids, parts, strict=True):
        v = find_volume(volumes, vid)
        assert v.size == size
        if img is not None:
            want = img.read_bytes()
            got = v.reader.read_at(0, len(want))
            assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest()
            blkid = run("blkid", "-p", "-O", str(v.offset), "-o", "export", path)
            assert ("TYPE=ext4" if img == ext4 else "TYPE=vfat") in blkid.splitlines()
    disk.close()
