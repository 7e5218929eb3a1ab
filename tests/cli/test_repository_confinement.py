"""The CLI's --repository confines the top image too: a link leading out is refused (exit 5,
one line), a link that stays inside is followed."""

from __future__ import annotations

from pathlib import Path

from tests.cli.runner import fails, ok
from tests.imagebuild import gpt_ext4 as images
from tests.imagebuild.sparse import copy_sparse


def test_top_image_link_out_of_the_repository(tmp_path: Path, ext4: images.Built) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    copy_sparse(ext4.image, outside / "disk.qcow2")
    (repo / "disk.qcow2").symlink_to(outside / "disk.qcow2")
    (repo / "vm").symlink_to(outside)
    for image in (repo / "disk.qcow2", repo / "vm" / "disk.qcow2"):
        line = fails(5, "ls", image, "--repository", repo)
        assert "outside the repository" in line
        assert str(outside) not in line
    # the same file reached through links that stay inside is read
    copy_sparse(ext4.image, repo / "real.qcow2")
    (repo / "latest.qcow2").symlink_to("real.qcow2")
    assert b"hello.txt" in ok("ls", repo / "latest.qcow2", "/", "--repository", repo)
    # without --repository the operator's own link is trusted, as documented
    assert b"hello.txt" in ok("ls", repo / "disk.qcow2", "/")
