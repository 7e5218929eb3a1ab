"""Path resolution inside a guest filesystem (fs/base.py), on real ext4, XFS and Btrfs images.

The tree (tests/imagebuild/tree.py) holds the traps: ``link-etc-passwd`` -> /etc/passwd
(absent from the guest, present on the host), ``docs/link-escape`` -> ../../../../etc/passwd,
``loop-a`` <-> ``loop-b``, ``link-to-dir`` -> docs, and dangling and absolute links.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filerestore.errors import (
    IsADirectoryError_,
    NotADirectoryError_,
    NotASymlinkError,
    PathNotFoundError,
    PathRefusedError,
    SymlinkLoopError,
)
from filerestore.fs.base import Filesystem
from filerestore.fs.entry import EntryKind
from tests.fs.conftest import btrfs_image, ext_image, xfs_image

OPENERS = {"ext4": lambda: ext_image("ext4"), "xfs": xfs_image, "btrfs": btrfs_image}


@pytest.fixture(scope="module", params=sorted(OPENERS))
def fs(request: pytest.FixtureRequest) -> Iterator[Filesystem[Any]]:
    img = OPENERS[request.param]()
    with img.opened() as opened:
        yield opened


def read_all(fs: Filesystem[Any], path: str) -> bytes:
    reader = fs.open(path)
    return reader.read_at(0, reader.size)


def test_dotdot_never_climbs_above_root(fs: Filesystem[Any]) -> None:
    assert fs.stat("/..").kind is EntryKind.DIR
    assert fs.stat("/../../..").path == "/"
    assert read_all(fs, "/../../../hello.txt") == b"hello, world\n"
    assert read_all(fs, "/docs/../../../docs/sub/../sub/nested.txt") == b"nested\n"
    assert fs.stat("docs/./sub//nested.txt").path == "/docs/sub/nested.txt"


def test_absolute_symlink_resolves_inside_the_guest(fs: Filesystem[Any]) -> None:
    assert fs.read_link("/link-absolute") == "/docs/sub/nested.txt"
    assert read_all(fs, "/link-absolute") == b"nested\n"
    assert fs.stat("/link-absolute", follow_symlinks=True).path == "/docs/sub/nested.txt"


def test_link_to_host_etc_passwd_is_not_found(fs: Filesystem[Any]) -> None:
    assert Path("/etc/passwd").exists()  # the host file the link names is really there
    with pytest.raises(PathNotFoundError):
        fs.open("/link-etc-passwd")
    with pytest.raises(PathNotFoundError):
        fs.stat("/link-etc-passwd", follow_symlinks=True)
    assert fs.stat("/link-etc-passwd").target == "/etc/passwd"


def test_relative_escape_stays_inside(fs: Filesystem[Any]) -> None:
    # ../../../../etc/passwd from /docs climbs to the guest root and no further
    with pytest.raises(PathNotFoundError):
        fs.open("/docs/link-escape")
    assert fs.read_link("/docs/link-escape") == "../../../../etc/passwd"


def test_symlink_loop_is_refused(fs: Filesystem[Any]) -> None:
    with pytest.raises(SymlinkLoopError):
        fs.open("/loop-a")
    with pytest.raises(SymlinkLoopError):
        fs.stat("/loop-b/anything")
    assert fs.stat("/loop-a").kind is EntryKind.SYMLINK  # not followed: fine


def test_nul_is_refused(fs: Filesystem[Any]) -> None:
    for call in (fs.stat, fs.open, fs.read_link, lambda p: list(fs.list_dir(p))):
        with pytest.raises(PathRefusedError):
            call("/docs\x00/readme.md")


def test_symlinked_directory_is_followed_for_listing(fs: Filesystem[Any]) -> None:
    via_link = sorted(e.name for e in fs.list_dir("/link-to-dir"))
    direct = sorted(e.name for e in fs.list_dir("/docs"))
    assert via_link == direct
    assert "readme.md" in direct
    assert read_all(fs, "/link-to-dir/sub/nested.txt") == b"nested\n"
    assert read_all(fs, "/link-relative") == b"# readme\n" * 100


def test_dangling_link(fs: Filesystem[Any]) -> None:
    assert fs.stat("/link-dangling").target == "does/not/exist"
    with pytest.raises(PathNotFoundError):
        fs.open("/link-dangling")


def test_wrong_kind_errors(fs: Filesystem[Any]) -> None:
    with pytest.raises(NotASymlinkError):
        fs.read_link("/hello.txt")
    with pytest.raises(IsADirectoryError_):
        fs.open("/docs")
    with pytest.raises(NotADirectoryError_):
        list(fs.list_dir("/hello.txt"))
    with pytest.raises(NotADirectoryError_):
        fs.stat("/hello.txt/more")
    with pytest.raises(PathNotFoundError):
        fs.stat("/no-such-file")


def test_twenty_levels_deep(fs: Filesystem[Any]) -> None:
    path = "/" + "/".join(f"level{i:02d}" for i in range(20)) + "/bottom.txt"
    assert read_all(fs, path) == b"twenty levels down\n"
    assert fs.stat(path).path == path


@pytest.mark.parametrize(
    "path", ["/no\nsuch", "/docs/a\r\nb", "/docs\x1b[2J/x", "/\x7f", "/link-dangling\n"]
)
def test_reasons_stay_one_line(fs: Filesystem[Any], path: str) -> None:
    """A request or guest path with control characters shows them as \\xNN escapes."""
    with pytest.raises((PathNotFoundError, NotADirectoryError_)) as caught:
        fs.stat(path, follow_symlinks=True)
    reason = str(caught.value)
    assert "\n" not in reason and "\r" not in reason and "\x1b" not in reason, reason
    assert "\\x" in reason, reason
