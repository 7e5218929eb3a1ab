"""Backup descriptions are kept per process while the chain's files stay the same: a repeated
catalog detail opens no image file for reading; a change, a replacement or a repointed link
is seen at once.

Opens are counted by a Python audit hook (every ``open`` that can read data, the store's
``/proc/self/fd`` reopen resolved to the file it opens), not by the cache's own counter.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filerestore.errors import RepositoryEscapeError
from filerestore.restore.descriptions import DescriptionCache
from tests.imagebuild.catalog_repo import make_repository
from tests.opens import recording_opens


def image_opens(opened: list[str], root: Path) -> list[str]:
    return [p for p in opened if p.endswith(".qcow2") and p.startswith(str(root.resolve()))]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    make_repository(root)
    return root


def test_repeated_detail_opens_no_image(repo: Path) -> None:
    cache = DescriptionCache()
    with recording_opens() as opened:
        first = cache.describe(str(repo), "vm1/disk0-inc2.qcow2")
    assert len(image_opens(opened, repo)) >= 3  # the hook sees the chain being opened
    assert [c.path.rsplit("/", 1)[-1] for c in first.chain] == [
        "disk0-inc2.qcow2",
        "disk0-inc1.qcow2",
        "disk0-full.qcow2",
    ]
    with recording_opens() as opened:
        for _ in range(20):
            assert cache.describe(str(repo), "vm1/disk0-inc2.qcow2") == first
    assert image_opens(opened, repo) == []
    assert cache.opened == 1


def test_a_changed_file_is_described_again(repo: Path) -> None:
    cache = DescriptionCache()
    cache.describe(str(repo), "vm1/disk0-inc2.qcow2")
    base = repo / "vm1" / "disk0-full.qcow2"
    st = base.stat()
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the bottom of the chain
    with recording_opens() as opened:
        cache.describe(str(repo), "vm1/disk0-inc2.qcow2")
    assert str(base.resolve()) in image_opens(opened, repo)
    assert cache.opened == 2


def test_a_repointed_link_and_an_escape_are_seen(repo: Path, tmp_path: Path) -> None:
    cache = DescriptionCache()
    (repo / "latest.qcow2").symlink_to("vm1/disk0-inc1.qcow2")
    assert len(cache.describe(str(repo), "latest.qcow2").chain) == 2
    (repo / "latest.qcow2").unlink()
    (repo / "latest.qcow2").symlink_to("vm1/disk0-inc2.qcow2")
    assert len(cache.describe(str(repo), "latest.qcow2").chain) == 3
    os.replace(repo / "vm1" / "disk0-inc2.qcow2", tmp_path / "outside.qcow2")
    (repo / "vm1" / "disk0-inc2.qcow2").symlink_to(tmp_path / "outside.qcow2")
    with pytest.raises(RepositoryEscapeError):
        cache.describe(str(repo), "latest.qcow2")


def test_a_disk_made_of_several_files_is_described(tmp_path: Path) -> None:
    """A split VMDK (descriptor and extents) has one signature per chain link: zipping the
    chain with the signatures failed (ValueError) when the extents were counted too."""
    from tests.imagebuild import formats as F

    image = F.VARIANTS["vmdk-twoGbMaxExtentSparse"]()
    cache = DescriptionCache()
    description = cache.describe(str(image.parent), image.name)
    assert [c.format for c in description.chain] == ["vmdk"]
    assert cache.describe(str(image.parent), image.name) == description
    assert cache.opened == 1
