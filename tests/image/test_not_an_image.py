"""Not every file is a disk image: empty files, files without a signature and not named as a
raw disk, are refused by name; an empty backing name means no backing file, as in QEMU.

The rule (image/chain.py): a top image is QCOW2 by its magic, or raw only when named
``*.raw`` or ``*.img``; an empty file never is an image.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from filerestore.errors import NotAnImageError
from filerestore.image import open_image, probe_chain
from tests.cli.runner import fails, json_out
from tests.image.conftest import qemu_img_info
from tests.imagebuild import qcow
from tests.imagebuild.hostile import DATA_PATTERN, qcow2_image


@pytest.mark.parametrize("name", ["empty.qcow2", "empty.raw", "empty.img", "empty"])
def test_an_empty_file_is_not_an_image(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(NotAnImageError, match="empty file, not a disk image"):
        open_image(tmp_path / name)
    line = fails(4, "inspect", tmp_path / name)
    assert line.endswith(f"{name}: empty file, not a disk image")
    assert str(tmp_path) not in line


@pytest.mark.parametrize("name", ["README", "notes.txt", "disk.bin", "backup.qcow2.partial"])
def test_a_file_without_a_signature_needs_a_raw_name(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"# not a disk\n" * 100)
    with pytest.raises(NotAnImageError, match=r"named \*\.raw or \*\.img"):
        probe_chain(tmp_path / name)
    fails(4, "ls", tmp_path / name)


@pytest.mark.parametrize("name", ["disk.raw", "disk.img"])
def test_a_raw_disk_named_raw_reads_as_its_bytes(tmp_path: Path, name: str) -> None:
    raw = tmp_path / name
    raw.symlink_to(qcow.test_disk())  # the operator's own link: followed without --repository
    with open_image(raw) as disk:
        assert disk.chain[0].format == "raw"
        assert (
            disk.read_at(1 << 20, 4096) == qcow.test_disk().read_bytes()[1 << 20 : (1 << 20) + 4096]
        )
    # a link named *.raw makes a raw image of a file named otherwise, inside a repository
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "disk.bin").write_bytes(DATA_PATTERN * 4)
    (repo / "latest.raw").symlink_to("disk.bin")
    assert [link.format for link in probe_chain(repo / "latest.raw", repo)] == ["raw"]
    with pytest.raises(NotAnImageError):
        probe_chain(repo / "disk.bin", repo)


def test_an_empty_backing_name_means_no_backing_file(tmp_path: Path) -> None:
    """backing_file_offset set, backing_file_size 0: QEMU opens no backing file
    (bdrv_open_backing_file with an empty name), and reads unallocated clusters as zeros."""
    image = tmp_path / "empty-backing.qcow2"
    image.write_bytes(qcow2_image(backing=b""))
    header = image.read_bytes()[8:20]
    assert int.from_bytes(header[:8], "big") != 0 and int.from_bytes(header[8:], "big") == 0
    info = qemu_img_info(image)
    assert "backing-filename" not in info
    links = probe_chain(image)
    assert len(links) == 1
    assert links[0].backing_name is None and links[0].backing_format is None
    expected = tmp_path / "expected.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", image, expected], check=True)
    with open_image(image) as disk:
        assert disk.read_at(0, disk.size) == expected.read_bytes()
    chain = json_out("inspect", image, "--json")["chain"]
    assert [c["backing_name"] for c in chain] == [None]
