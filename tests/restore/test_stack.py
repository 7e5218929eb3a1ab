"""open_stack and describe_image against GPT + ext4 images built by sfdisk and mke2fs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from filerestore.blockio import BytesReader, CachedReader, Reader
from filerestore.errors import (
    AmbiguousVolumeError,
    CorruptImageError,
    ImageNotFoundError,
    NoFilesystemError,
    VolumeNotFoundError,
)
from filerestore.fs import Detection
from filerestore.restore import open_stack
from filerestore.restore.describe import describe_image
from tests.imagebuild import gpt_ext4 as images


def open_fds() -> int:
    return len({p.name for p in Path("/proc/self/fd").iterdir()})


def test_single_filesystem_is_chosen(ext4: images.Built) -> None:
    part = ext4.layout()["partitiontable"]["partitions"][0]  # type: ignore[index]
    with open_stack(ext4.image) as stack:
        assert stack.volume.id == "p1"
        assert stack.volume.offset == part["start"] * 512
        assert stack.fs.kind == "ext4"
        assert stack.fs.label == "root"
        assert [v.id for v in stack.volumes] == ["p1"]
        reader = stack.fs.open("/hello.txt")
        assert reader.read_at(0, reader.size) == b"hello, world\n"


def test_explicit_volume(two: images.Built) -> None:
    with open_stack(two.image, volume_id="p3") as stack:
        assert stack.fs.label == "beta"
        names = {e.name for e in stack.fs.list_dir("/")}
    assert names == {p.name for p in (two.tree(2)).iterdir()} | {"lost+found"}


def test_ambiguous_volume_lists_kind_size_label(two: images.Built) -> None:
    with pytest.raises(AmbiguousVolumeError) as info:
        open_stack(two.image)
    # 16 MiB partitions named alpha and beta in the recipe; p2 has no filesystem
    assert info.value.choices == ["p1 (ext4, 16 MiB, 'alpha')", "p3 (ext4, 16 MiB, 'beta')"]


def test_ambiguity_names_filesystem_labels_when_partitions_have_none() -> None:
    built = images.two_unnamed_ext4()
    names = [p.get("name") for p in built.layout()["partitiontable"]["partitions"]]  # type: ignore[index]
    assert names == [None, None]  # sfdisk agrees: no GPT names
    with pytest.raises(AmbiguousVolumeError) as info:
        open_stack(built.image)
    # mke2fs -L left and right in the recipe
    assert info.value.choices == ["p1 (ext4, 16 MiB, 'left')", "p2 (ext4, 16 MiB, 'right')"]


def test_unknown_and_empty_volumes(two: images.Built) -> None:
    with pytest.raises(VolumeNotFoundError, match="p1, p2, p3"):
        open_stack(two.image, volume_id="p7")
    with pytest.raises(NoFilesystemError):
        open_stack(two.image, volume_id="p2")


def test_missing_image(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError):
        open_stack(tmp_path / "missing.qcow2")


def test_no_descriptor_leaks(two: images.Built) -> None:
    with open_stack(two.image, volume_id="p1"):
        pass
    before = open_fds()
    for _ in range(30):
        with open_stack(two.image, volume_id="p1") as stack:
            stack.fs.stat("/hello.txt")
        for bad in ("p2", "p9", None):
            with pytest.raises((NoFilesystemError, VolumeNotFoundError, AmbiguousVolumeError)):
                open_stack(two.image, volume_id=bad)
        describe_image(two.image)
    assert open_fds() == before


def test_describe_image_matches_sfdisk(two: images.Built) -> None:
    desc = describe_image(two.image)
    parts = two.layout()["partitiontable"]["partitions"]  # type: ignore[index]
    assert [(v.id, v.offset, v.size, v.label) for v in desc.volumes] == [
        (f"p{i + 1}", p["start"] * 512, p["size"] * 512, p["name"]) for i, p in enumerate(parts)
    ]
    assert [(v.filesystem_type, v.filesystem_label) for v in desc.volumes] == [
        ("ext4", "alpha"),
        (None, None),
        ("ext4", "beta"),
    ]
    assert [c.format for c in desc.chain] == ["qcow2"]
    assert desc.chain[0].path == str(two.image.resolve())
    assert json.loads(json.dumps(desc.to_dict()))["volumes"][2]["filesystem_type"] == "ext4"


class DamagedReader(BytesReader):
    """Bytes with one unreadable range, like a qcow2 cluster pointing past its file."""

    def __init__(self, data: bytes, bad: range) -> None:
        super().__init__(data)
        self.bad = bad

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < self.bad.stop and offset + length > self.bad.start:
            raise CorruptImageError("damaged")
        return super().read_at(offset, length)


def test_cached_reader_returns_what_its_source_holds() -> None:
    data = random.Random(7).randbytes(1_000_003)
    cached = CachedReader(BytesReader(data), block_size=4096, blocks=8)
    rng = random.Random(8)
    for _ in range(3000):
        offset = rng.randrange(0, len(data) + 10)
        length = rng.choice([1, 17, 512, 4095, 4096, 4097, 9000, 70_000])
        assert cached.read_at(offset, length) == data[offset : offset + length]
    assert cached.size == len(data)


def test_cached_reader_reads_around_damage() -> None:
    data = bytes(range(256)) * 64  # 16 KiB: four blocks of 4 KiB
    cached = CachedReader(DamagedReader(data, range(5000, 5100)), block_size=4096)
    # same block as the damage, but not the damaged bytes: still readable
    assert cached.read_at(4100, 100) == data[4100:4200]
    with pytest.raises(CorruptImageError):
        cached.read_at(5050, 10)


def test_a_filesystem_is_detected_once_when_no_volume_is_named(
    ext4: images.Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Choosing the volume runs the detection chain; opening it does not run it again."""
    import filerestore.fs
    import filerestore.restore.stack

    calls: list[object] = []
    real = filerestore.fs.detect

    def counted(reader: Reader) -> Detection | None:
        calls.append(reader)
        return real(reader)

    monkeypatch.setattr(filerestore.fs, "detect", counted)  # what open_filesystem calls
    monkeypatch.setattr(filerestore.restore.stack, "detect", counted)
    with open_stack(ext4.image) as stack:
        assert stack.fs.kind == "ext4"
    assert len(calls) == 1
