"""NTFS files whose data is elsewhere are marked and refused, never read as zeros; WOF-
compressed files read as the source tree (tests/imagebuild/fs_special.py builds both)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from filerestore.api.schemas import EntryOut
from filerestore.errors import DataNotInImageError, FilesystemError
from filerestore.fs import ntfs
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import DATA_LOCATIONS
from tests.fs.conftest import opened_image
from tests.imagebuild import fs_special
from tests.imagebuild.fs_special import (
    HYDRATED,
    NTFS_REPARSE_FILES,
    WOF_VARIANTS,
    WOF_WITHOUT_STREAM,
)


@pytest.fixture(scope="module")
def reparse_fs() -> Iterator[Filesystem[Any]]:
    yield from opened_image(fs_special.ntfs_reparse_image(), ntfs.open_fs)


@pytest.fixture(scope="module")
def wof_fs() -> Iterator[Filesystem[Any]]:
    yield from opened_image(fs_special.ntfs_wof_image(), ntfs.open_fs)


@pytest.mark.parametrize("name", sorted(NTFS_REPARSE_FILES))
def test_listing_says_where_the_data_is(reparse_fs: Filesystem[Any], name: str) -> None:
    spec = NTFS_REPARSE_FILES[name]
    entry = next(e for e in reparse_fs.list_dir("/") if e.name == name)
    assert entry.size == spec.size
    assert entry.data_location == spec.location
    assert reparse_fs.stat(f"/{name}").data_location == spec.location
    assert EntryOut.of(entry).data_location == spec.location  # visible in the API


@pytest.mark.parametrize(
    "name", sorted(n for n, s in NTFS_REPARSE_FILES.items() if s.location is not None)
)
def test_data_kept_elsewhere_is_refused_by_name(reparse_fs: Filesystem[Any], name: str) -> None:
    location = NTFS_REPARSE_FILES[name].location
    assert location is not None
    with pytest.raises(DataNotInImageError) as info:
        reparse_fs.open(f"/{name}")
    assert str(info.value) == (
        f"ntfs: the file's data is not in this image: it is kept in "
        f"{DATA_LOCATIONS[location]} ({location})"
    )


@pytest.mark.parametrize(
    "name", sorted(n for n, s in NTFS_REPARSE_FILES.items() if s.location is None)
)
def test_reparse_points_whose_data_is_here_read(reparse_fs: Filesystem[Any], name: str) -> None:
    """A hydrated cloud file ("always keep on this device") keeps its tag and its data."""
    reader = reparse_fs.open(f"/{name}")
    assert reader.read_at(0, reader.size) == HYDRATED[: NTFS_REPARSE_FILES[name].size]


@pytest.mark.parametrize("variant", sorted(WOF_VARIANTS))
def test_wof_compressed_files_read_as_the_source(wof_fs: Filesystem[Any], variant: str) -> None:
    tree = fs_special.wof_tree()
    for src in sorted(tree.iterdir()):
        want = src.read_bytes()
        entry = wof_fs.stat(f"/{variant}/{src.name}")
        assert (entry.size, entry.data_location) == (len(want), None)
        reader = wof_fs.open(f"/{variant}/{src.name}")
        assert reader.read_at(0, reader.size) == want, src.name
        # reads that start and end inside chunks
        assert reader.read_at(4095, 9000) == want[4095:13095], src.name


def test_wof_without_its_stream_is_refused(reparse_fs: Filesystem[Any]) -> None:
    """A WOF file-provider reparse point whose WofCompressedData stream is missing would read
    as its sparse unnamed stream, all zeros: refused as corrupt instead."""
    entry = reparse_fs.stat(f"/{WOF_WITHOUT_STREAM}")
    assert (entry.size, entry.data_location) == (40_000, None)
    with pytest.raises(FilesystemError) as info:
        reparse_fs.open(f"/{WOF_WITHOUT_STREAM}")
    assert (
        str(info.value)
        == "ntfs: WOF-compressed file without its WofCompressedData stream (corrupt)"
    )
