"""The LVM2 text metadata parser, on text LVM wrote and on hand-written syntax cases."""

from __future__ import annotations

import json

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import LvmMetadataError
from filerestore.volume import lvm
from filerestore.volume.lvm_metadata import parse_config, volume_group
from tests.imagebuild.lvm_disks import lvm_whole_disk
from tests.volume.lvm_texts import SYNTAX_ERRORS, large_metadata


def test_metadata_lvm_wrote_matches_its_reports():
    d = lvm_whole_disk()
    report = json.loads((d / "lvm.json").read_text())
    with FileReader(d / "disk.img") as disk:
        pv = lvm.scan_physical_volume(disk, 0)
    assert pv is not None and pv.vg is not None
    vg = pv.vg
    pv_row = report["pvs"][0]
    assert pv.label.uuid == pv_row["pv_uuid"]
    assert vg.name == pv_row["vg_name"]
    assert vg.extent_size * 512 == int(pv_row["vg_extent_size"])
    assert [p.pe_start * 512 for p in vg.pvs] == [int(pv_row["pe_start"])]
    assert [p.uuid for p in vg.pvs] == [pv_row["pv_uuid"]]
    want: dict[str, list[object]] = {}
    for row in report["lvs"]:
        want.setdefault(row["lv_name"], []).append(
            (int(row["seg_start_pe"]), int(row["seg_size"]) // int(pv_row["vg_extent_size"]))
        )
    got = {lv.name: [(s.start_extent, s.extent_count) for s in lv.segments] for lv in vg.lvs}
    assert got == want
    uuids = {r["lv_name"]: r["lv_uuid"] for r in report["lvs"]}
    assert {lv.name: lv.uuid for lv in vg.lvs} == uuids


def test_syntax_strings_comments_arrays_numbers():
    tree = parse_config(
        '# a comment\nvg {\n  id = "a\\"b\\\\c"  # trailing comment\n'
        "  seqno = 7\n  ratio = 1.5\n  neg = -3\n  empty = []\n"
        '  mixed = ["pv0", 0, "pv1", 12]\n  sub { k = "#not a comment" }\n}\n'
        "version = 1\n"
    )
    vg = tree["vg"]
    assert isinstance(vg, dict)
    assert vg["id"] == 'a"b\\c'
    assert (vg["seqno"], vg["ratio"], vg["neg"], vg["empty"]) == (7, 1.5, -3, [])
    assert vg["mixed"] == ["pv0", 0, "pv1", 12]
    assert vg["sub"] == {"k": "#not a comment"}
    assert tree["version"] == 1


@pytest.mark.parametrize(("text", "message"), SYNTAX_ERRORS)
def test_syntax_errors_are_refused(text, message):
    with pytest.raises(LvmMetadataError, match=message):
        parse_config(text)


def test_volume_group_needs_exactly_one_group():
    with pytest.raises(LvmMetadataError, match="holds 0 volume groups"):
        volume_group(parse_config("version = 1\n"))


def test_large_metadata_parses():
    vg = volume_group(parse_config(large_metadata(3000)))
    assert len(vg.lvs) == 3000
    assert vg.lvs[2999].segments[0].stripes == (("pv0", 2999),)
