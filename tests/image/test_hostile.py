"""Every hostile image (QCOW2, VMDK, VHD, VHDX) is refused with its specific error, fast,
opening nothing outside its repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from filerestore.image import open_image
from tests.image.conftest import sha256_of_reader
from tests.imagebuild.hostile import DATA_PATTERN, HOSTILE, HostileImage, qcow2_image
from tests.imagebuild.hostile_formats import HOSTILE_FORMATS
from tests.opens import O_PATH, recording_opens


def test_audit_hook_sees_os_open(tmp_path: Path) -> None:
    with recording_opens() as opened:
        os.close(os.open(tmp_path, os.O_RDONLY))
        fd = os.open(tmp_path, os.O_RDONLY)
        os.close(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY))
        os.close(fd)
        os.close(os.open(tmp_path, os.O_RDONLY | O_PATH))
    assert opened == [str(tmp_path)] * 3


def test_baseline_image_is_valid_for_qemu(tmp_path: Path) -> None:
    """The image every hostile entry starts from is one qemu-img accepts and reads as we do."""
    image = tmp_path / "base.qcow2"
    image.write_bytes(qcow2_image())
    subprocess.run(["qemu-img", "check", str(image)], check=True, capture_output=True)
    raw = tmp_path / "base.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(raw)], check=True)
    expected = raw.read_bytes()
    assert expected[: len(DATA_PATTERN)] == DATA_PATTERN
    with open_image(image) as disk:
        assert disk.read_at(0, disk.size) == expected


@pytest.mark.parametrize("entry", HOSTILE + HOSTILE_FORMATS, ids=lambda e: e.name)
def test_hostile_image_is_refused(entry: HostileImage, tmp_path: Path) -> None:
    top = entry.build(tmp_path)
    repo = (tmp_path / "repo").resolve()
    with (
        recording_opens() as opened,
        pytest.raises(entry.error) as info,
        open_image(top, repo) as disk,
    ):
        sha256_of_reader(disk)
    assert type(info.value) is entry.error, info.value
    assert entry.match in str(info.value), str(info.value)
    for path in opened:
        assert Path(os.path.realpath(path)).is_relative_to(repo), f"opened {path}"
