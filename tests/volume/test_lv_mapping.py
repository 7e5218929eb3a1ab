"""The LV address mapping as a pure function: hand-worked cases of dm-linear and dm-stripe."""

from __future__ import annotations

import pytest

from filerestore.blockio import BytesReader
from filerestore.errors import VolumeUnavailableError
from filerestore.volume.lv_reader import (
    LogicalVolumeReader,
    MappedSegment,
    UnavailableReader,
    contiguous_offset,
    map_range,
)


def runs(segments: tuple[MappedSegment, ...], offset: int, length: int) -> list[tuple[int, int]]:
    return map_range(segments, [s.start for s in segments], offset, length)


LINEAR = (MappedSegment(0, 100, 100, (1000,)), MappedSegment(100, 50, 50, (5000,)))
ADJACENT = (MappedSegment(0, 100, 100, (1000,)), MappedSegment(100, 50, 50, (1100,)))
# 2 stripes of 4-byte chunks over 16 bytes: chunks 0,2 on stripe A (at 100), 1,3 on B (at 900)
STRIPED = (MappedSegment(0, 16, 4, (100, 900)),)


def test_linear_read_inside_one_segment_is_one_run():
    assert runs(LINEAR, 10, 20) == [(1010, 20)]


def test_linear_read_across_segments_splits():
    assert runs(LINEAR, 90, 20) == [(1090, 10), (5000, 10)]


def test_read_across_adjacent_segments_is_coalesced():
    assert runs(ADJACENT, 0, 150) == [(1000, 150)]
    assert contiguous_offset(ADJACENT) == 1000
    assert contiguous_offset(LINEAR) is None
    assert contiguous_offset(STRIPED) is None


def test_striped_chunks_go_round_robin():
    # dm-stripe: chunk n -> stripe n % 2, row n // 2, offset row * chunk in that stripe
    assert runs(STRIPED, 0, 16) == [(100, 4), (900, 4), (104, 4), (904, 4)]
    assert runs(STRIPED, 5, 6) == [(901, 3), (104, 3)]
    assert runs(STRIPED, 15, 1) == [(907, 1)]


def test_read_past_the_end_is_clamped():
    disk = BytesReader(bytes(range(256)) * 40)
    lv = LogicalVolumeReader(disk, LINEAR)
    assert lv.size == 150
    data = disk.read_at(0, 10240)
    assert lv.read_at(140, 100) == data[5040:5050]
    assert lv.read_at(150, 10) == b""
    assert lv.read_at(0, 150) == data[1000:1100] + data[5000:5050]
    with pytest.raises(ValueError):
        lv.read_at(-1, 5)


def test_striped_reader_reassembles_chunks():
    disk = BytesReader(bytes(range(256)) * 4)
    lv = LogicalVolumeReader(disk, STRIPED)
    raw = disk.read_at(0, 1024)
    want = raw[100:104] + raw[900:904] + raw[104:108] + raw[904:908]
    assert lv.read_at(0, 16) == want
    assert all(lv.read_at(i, 3) == want[i : i + 3] for i in range(16))


def test_unavailable_volume_raises_on_read():
    r = UnavailableReader(4096, "lvm/vg/lv: physical volume X is not on this disk")
    assert r.size == 4096
    with pytest.raises(VolumeUnavailableError, match="not on this disk"):
        r.read_at(0, 1)
