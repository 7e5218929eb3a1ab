"""The reproducer format of the image harnesses: damage to a seed, decoded and laid over it."""

from __future__ import annotations

from pathlib import Path

from filerestore.blockio import FileReader
from fuzz.patches import PatchedReader, decode, encode, make_seed, nonzero_sectors


def _seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "seed.img"
    with path.open("wb") as fh:
        fh.truncate(1 << 20)
        fh.seek(512 * 3 + 7)
        fh.write(b"metadata")
        fh.seek(512 * 1000)
        fh.write(b"\x01" * 600)  # sectors 1000 and 1001
    return path


def test_hot_sectors_are_the_non_zero_ones(tmp_path):
    path = _seed_file(tmp_path)
    assert nonzero_sectors(path) == [3, 1000, 1001]
    assert nonzero_sectors(path, [(0, 4096)]) == [3]


def test_patches_land_on_hot_sectors_and_read_back(tmp_path):
    seed = make_seed("s", _seed_file(tmp_path))
    data = encode(0, [(0, 7, b"METADATA"), (2, 510, b"xyzw")])
    damage = decode(data, [seed])
    assert damage.patches == ((512 * 3 + 7, b"METADATA"), (512 * 1001 + 510, b"xyzw"))
    with FileReader(seed.path) as base:
        reader = PatchedReader(base, damage)
        assert reader.read_at(512 * 3, 20) == bytes(7) + b"METADATA" + bytes(5)
        # a patch running past its sector continues into the next one
        assert reader.read_at(512 * 1001 + 508, 8) == b"\x00\x00xyzw\x00\x00"
        assert reader.size == 1 << 20


def test_size_changes_cut_or_extend_with_zeros(tmp_path):
    seed = make_seed("s", _seed_file(tmp_path))
    with FileReader(seed.path) as base:
        cut = PatchedReader(base, decode(encode(0, [], size=4096), [seed]))
        assert cut.size == 4096 and cut.read_at(4000, 200) == bytes(96)
        grown = PatchedReader(base, decode(encode(0, [], size=(1 << 20) + 10), [seed]))
        assert grown.read_at((1 << 20) - 2, 100) == bytes(12)


def test_every_byte_string_decodes(tmp_path):
    seed = make_seed("s", _seed_file(tmp_path))
    for data in (b"", b"\xff", b"\x80\x01", bytes(range(256)), b"\x00" + b"\xff" * 40):
        damage = decode(data, [seed])
        assert all(0 <= pos < 2 << 20 and 1 <= len(b) <= 64 for pos, b in damage.patches)
