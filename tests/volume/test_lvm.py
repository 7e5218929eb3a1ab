"""LVM2 volumes made with pvcreate/vgcreate/vgcfgrestore, compared with lvs and pvs reports."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import VolumeUnavailableError
from filerestore.volume import Volume, find_volume, list_volumes, lvm
from tests.imagebuild.disk import sfdisk_json
from tests.imagebuild.lvm_disks import lvm_gpt_disk, lvm_mbr_disk, lvm_whole_disk
from tests.imagebuild.lvm_tools import lv_content, metadata_wraps


def load(d: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((d / "lvm.json").read_text())
    segs = defaultdict(list)
    for row in report["lvs"]:
        segs[row["lv_name"]].append(row)
    report["segs"] = dict(segs)
    return report


def pv_disk_offsets(d: Path, report: dict[str, Any]) -> dict[str, int]:
    """Loop device in the reports -> disk offset of that PV's first extent (None: elsewhere)."""
    where = {"d": 0}
    if "d" not in report["devices"].values():
        parts = {p["node"][-1]: p for p in sfdisk_json(d / "disk.img")["partitions"]}
        if (d / "disk.img").read_bytes()[512:520] == b"EFI PART":
            where = {"a": parts["2"]["start"] * 512, "b": parts["3"]["start"] * 512}
        else:
            where = {"m": parts["5"]["start"] * 512}
    return {
        pv["pv_name"]: where[report["devices"][pv["pv_name"]]] + int(pv["pe_start"])
        for pv in report["pvs"]
        if report["devices"][pv["pv_name"]] in where
    }


def missing_pv_lvs(report: dict[str, Any], offsets: dict[str, int]) -> set[str]:
    return {
        name
        for name, rows in report["segs"].items()
        if any(r.split(":")[0] not in offsets for row in rows for r in row["seg_pe_ranges"].split())
    }


BUILDERS = {"gpt": lvm_gpt_disk, "mbr": lvm_mbr_disk, "whole": lvm_whole_disk}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def lvm_disk(request):
    d = BUILDERS[request.param]()
    disk = FileReader(d / "disk.img")
    yield d, load(d), disk, list_volumes(disk)
    disk.close()


def lvs_of(volumes: list[Volume]) -> dict[str, Volume]:
    return {v.id: v for v in volumes if v.scheme == "lvm"}


def test_logical_volumes_match_lvs(lvm_disk):
    d, report, _disk, volumes = lvm_disk
    extent = int(report["pvs"][0]["vg_extent_size"])
    offsets = pv_disk_offsets(d, report)
    missing = missing_pv_lvs(report, offsets)
    expected = {}
    for name, rows in report["segs"].items():
        contiguous = None
        if len(rows) == 1 and rows[0]["stripes"] == "1" and name not in missing:
            dev, pes = rows[0]["seg_pe_ranges"].split(":")
            contiguous = offsets[dev] + int(pes.split("-")[0]) * extent
        expected[f"lvm/{rows[0]['vg_name']}/{name}"] = (
            int(rows[0]["lv_size"]),
            rows[0]["lv_uuid"],
            name,
            contiguous,
            name in missing,
        )
    got = {
        vid: (v.size, v.uuid, v.label, v.offset, v.error is not None)
        for vid, v in lvs_of(volumes).items()
    }
    assert got == expected
    assert all(v.type == "lvm" for v in lvs_of(volumes).values())


def test_segment_layout_matches_lvs(lvm_disk):
    d, report, _disk, volumes = lvm_disk
    extent = int(report["pvs"][0]["vg_extent_size"])
    offsets = pv_disk_offsets(d, report)
    found = [lvm.scan_physical_volume(v.reader, v.offset) for v in volumes if v.scheme != "lvm"]
    lvs = {lv.name: lv for lv in lvm.logical_volumes([pv for pv in found if pv is not None])}
    missing = missing_pv_lvs(report, offsets)
    assert set(lvs) == set(report["segs"])
    for name, rows in report["segs"].items():
        if name in missing:
            assert lvs[name].segments == () and "not on this disk" in (lvs[name].error or "")
            continue
        got = [
            (s.start, s.length, s.chunk if len(s.areas) > 1 else 0, s.areas)
            for s in lvs[name].segments
        ]
        want = []
        for row in sorted(rows, key=lambda r: int(r["seg_start"])):
            areas = tuple(
                offsets[r.split(":")[0]] + int(r.split(":")[1].split("-")[0]) * extent
                for r in row["seg_pe_ranges"].split()
            )
            want.append(
                (int(row["seg_start"]), int(row["seg_size"]), int(row["stripe_size"]), areas)
            )
        assert got == want, name
        assert int(rows[0]["stripes"]) == len(lvs[name].segments[0].areas)


def test_pv_partitions_are_listed_too(lvm_disk):
    d, report, _disk, volumes = lvm_disk
    if (d / "disk.img").read_bytes()[512:520] == b"EFI PART":
        assert [v.id for v in volumes if v.scheme == "gpt"] == ["p1", "p2", "p3"]
        assert {v.type_name for v in volumes if v.label in ("pv-a", "pv-b")} == {"Linux LVM"}
    elif "m" in report["devices"].values():
        assert [v.id for v in volumes if v.scheme == "mbr"] == ["p1", "p2", "p5", "p6"]
        assert [v.id for v in volumes if v.type_name == "Linux LVM"] == ["p5"]
    else:
        whole = find_volume(volumes, "disk")
        assert (whole.type, whole.type_name) == ("lvm", "Linux LVM")
        assert whole.uuid == report["pvs"][0]["pv_uuid"]


def test_reading_an_lv_yields_the_bytes_written(lvm_disk):
    d, _report, _disk, volumes = lvm_disk
    for vid, v in lvs_of(volumes).items():
        if v.error:
            with pytest.raises(VolumeUnavailableError, match="not on this disk"):
                v.reader.read_at(0, 512)
            continue
        name = vid.rsplit("/", 1)[1]
        want = (d / "root.ext4").read_bytes() if name == "root" else lv_content(name, v.size)
        got = v.reader.read_at(0, v.size)
        assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest(), vid
        # reads across segment and stripe boundaries, in odd sizes
        rng = random.Random(vid)
        for _ in range(200):
            off = rng.randrange(v.size)
            n = rng.choice([1, 511, 4096, 65537, 300_000])
            assert v.reader.read_at(off, n) == want[off : off + n]


def test_ext4_in_an_lv_reads_with_e2fsprogs(tmp_path):
    d = lvm_gpt_disk()
    with FileReader(d / "disk.img") as disk:
        root = find_volume(list_volumes(disk), "lvm/vg0/root")
        out = tmp_path / "root.img"
        out.write_bytes(root.reader.read_at(0, root.size))
    subprocess.run(["e2fsck", "-fn", out], check=True, capture_output=True)
    cat = subprocess.run(["debugfs", "-R", "cat /hello.txt", out], check=True, capture_output=True)
    assert cat.stdout == b"hello, world\n"


def test_whole_disk_metadata_text_wraps_around_its_area():
    d = lvm_whole_disk()
    # the image was built so that LVM's last metadata write wrapped: read through the wrap
    assert metadata_wraps((d / "disk.img").read_bytes()[:8192])
    with FileReader(d / "disk.img") as disk:
        assert sorted(lvs_of(list_volumes(disk))) == ["lvm/vgdisk/data", "lvm/vgdisk/flat"]


def test_lv_reader_is_thread_safe():
    d = lvm_gpt_disk()
    with FileReader(d / "disk.img") as disk:
        v = find_volume(list_volumes(disk), "lvm/vg0/mixed")
        want = lv_content("mixed", v.size)
        errors = []

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(300):
                off = rng.randrange(v.size)
                n = rng.randrange(1, 200_000)
                if v.reader.read_at(off, n) != want[off : off + n]:
                    errors.append((off, n))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
