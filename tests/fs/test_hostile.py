"""Hostile filesystem images (tests/imagebuild/fs_hostile.py): each is refused by name, with
the specific error class and reason, in bounded memory (the peak RSS figures are printed by
bench/fs_bombs.py, not asserted here)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from filerestore.blockio import FileReader
from tests.imagebuild.fs_hostile import FS_HOSTILE, HostileFs


@pytest.mark.parametrize("case", FS_HOSTILE, ids=[c.name for c in FS_HOSTILE])
def test_hostile_image_is_refused_by_name(case: HostileFs, tmp_path: Path) -> None:
    if case.kind == "btrfs":
        pytest.importorskip("dissect.btrfs", reason="the [btrfs] extra is not installed")
    image = case.build(tmp_path)
    backend = importlib.import_module(f"filerestore.fs.{case.kind}")
    with FileReader(image) as reader, pytest.raises(case.error) as info:
        fs = backend.open_fs(reader)
        case.action(fs)
    assert type(info.value) is case.error
    assert case.match in str(info.value)
    assert "\n" not in str(info.value)  # one line
