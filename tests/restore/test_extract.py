"""Extraction to a host directory: one bad entry is skipped and reported, never the restore's
end, and a short read never leaves a truncated file that looks restored."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filerestore.blockio import FileReader
from filerestore.errors import ShortReadError
from filerestore.fs import open_filesystem
from filerestore.fs.base import Filesystem
from filerestore.restore.extract import extract
from filerestore.restore.file_data import read_chunks
from tests.imagebuild import broken_entries as broken
from tests.restore.short_reader import ShortReader


@pytest.fixture(scope="module")
def broken_fs() -> Iterator[Filesystem[Any]]:
    with FileReader(broken.broken_entries_image()) as reader:
        fs = open_filesystem(reader)
        try:
            yield fs
        finally:
            fs.close()


def test_every_entry_that_can_be_restored_is(broken_fs, tmp_path: Path) -> None:
    result = extract(broken_fs, "/", tmp_path)
    assert sorted(f.path for f in result.failed) == sorted(broken.BROKEN)
    for rel, data in broken.GOOD.items():
        assert (tmp_path / rel).read_bytes() == data, rel
    for rel, target in broken.GOOD_LINKS.items():
        assert os.readlink(tmp_path / rel) == target
    # nothing of a skipped entry is left behind, and no name outside the tree appeared
    assert not (tmp_path / broken.BAD_EXTENT).exists()
    for rel in broken.NUL_LINKS:
        assert not os.path.lexists(tmp_path / rel)
    assert sorted(os.listdir(tmp_path / "odd")) == []
    reasons = {f.path: f.reason for f in result.failed}
    assert "NUL" in reasons[f"/{broken.NUL_LINKS[0]}"]
    assert "NUL" in reasons[f"/{broken.NUL_NAME[1]}"]
    assert reasons[f"/{broken.BAD_EXTENT}"].startswith("filesystem_error: ")
    assert reasons["/odd"].startswith("filesystem_error: ")


def test_the_read_loop_refuses_a_short_read(broken_fs) -> None:
    reader = ShortReader(broken_fs.open("/big.bin"), cut=(1 << 20) + 100)
    chunks = read_chunks(reader, "/big.bin")
    assert len(next(chunks)) == 1 << 20
    with pytest.raises(ShortReadError, match=r"short read of /big.bin at byte 1048576"):
        next(chunks)


def test_a_short_read_skips_the_file_and_leaves_nothing(broken_fs, tmp_path, monkeypatch) -> None:
    real_open = broken_fs.open
    monkeypatch.setattr(broken_fs, "open", lambda path: ShortReader(real_open(path), cut=5000))
    result = extract(broken_fs, "/big.bin", tmp_path)
    assert [(f.path, f.reason.split(":")[0]) for f in result.failed] == [("/big.bin", "short_read")]
    assert result.files == 0 and list(tmp_path.iterdir()) == []
