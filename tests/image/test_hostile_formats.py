"""Every hostile VMDK, VHD and VHDX is refused with its specific error, fast, opening nothing
outside its repository (the audit hook of test_hostile records every open that reads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filerestore.image import open_image
from tests.image.conftest import sha256_of_reader
from tests.image.test_hostile import recording_opens
from tests.imagebuild.hostile import HostileImage
from tests.imagebuild.hostile_formats import HOSTILE_FORMATS


@pytest.mark.parametrize("entry", HOSTILE_FORMATS, ids=[e.name for e in HOSTILE_FORMATS])
def test_hostile_format_is_refused(entry: HostileImage, tmp_path: Path) -> None:
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
