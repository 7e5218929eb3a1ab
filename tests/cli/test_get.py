"""`filerestore get`: trees written to the host match the source, and never escape DEST."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from filerestore.cli.main import main
from filerestore.restore.names import printable
from filerestore.restore.stack import Stack, open_stack
from tests.cli.runner import fails, ok, run
from tests.imagebuild import broken_entries as broken
from tests.imagebuild import gpt_ext4 as images
from tests.restore.short_reader import ShortReader


def snapshot(root: Path) -> dict[str, tuple[str, int, int, bytes | str | None]]:
    """(kind, permission bits, mtime_ns, content or link text) of everything below root."""
    out: dict[str, tuple[str, int, int, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", 0, st.st_mtime_ns, str(path.readlink()))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns, None)
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns, path.read_bytes())
    return out


def without_special_bits(
    snap: dict[str, tuple[str, int, int, bytes | str | None]],
) -> dict[str, tuple[str, int, int, bytes | str | None]]:
    return {k: (kind, mode & 0o777, mtime, data) for k, (kind, mode, mtime, data) in snap.items()}


def test_get_root_reproduces_the_source_tree(ext4: images.Built, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    ok("get", ext4.image, "/", dest)
    got = snapshot(dest)
    assert got.pop("lost+found")[0] == "dir"  # made by mke2fs, not in the source
    assert got == without_special_bits(snapshot(ext4.tree()))
    # the special bits were in the image and are dropped on the way out
    assert ext4.tree().joinpath("docs/suid-tool").stat().st_mode & stat.S_ISUID
    assert got["docs/suid-tool"][1] == 0o755
    assert ext4.tree().joinpath("shared-tmp").stat().st_mode & stat.S_ISVTX
    assert got["shared-tmp"][1] == 0o777


def test_get_keeps_holes(ext4: images.Built, tmp_path: Path) -> None:
    ok("get", ext4.image, "/sparse.bin", tmp_path)
    out = tmp_path / "sparse.bin"
    assert out.read_bytes() == (ext4.tree() / "sparse.bin").read_bytes()
    assert out.stat().st_blocks * 512 < 8 << 20  # 32 MiB apparent, two 64 KiB runs of data


def test_get_a_directory_lands_under_its_name(ext4: images.Built, tmp_path: Path) -> None:
    ok("get", ext4.image, "/docs", tmp_path)
    assert snapshot(tmp_path / "docs") == without_special_bits(snapshot(ext4.tree() / "docs"))
    source = (ext4.tree() / "docs").stat()
    assert (tmp_path / "docs").stat().st_mtime_ns == source.st_mtime_ns


def test_get_a_file_and_a_symlink(ext4: images.Built, tmp_path: Path) -> None:
    ok("get", ext4.image, "/docs/data.bin", tmp_path)
    ok("get", ext4.image, "/link-etc-passwd", tmp_path)
    source = ext4.tree() / "docs" / "data.bin"
    assert (tmp_path / "data.bin").read_bytes() == source.read_bytes()
    assert (tmp_path / "data.bin").stat().st_mtime_ns == source.stat().st_mtime_ns
    assert str((tmp_path / "link-etc-passwd").readlink()) == "/etc/passwd"


def test_get_refuses_a_planted_file_symlink(ext4: images.Built, tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"keep me\n")
    (dest / "hello.txt").symlink_to(victim)
    (dest / "empty").symlink_to(outside / "new-file")  # dangling: must not be created either
    line = fails(5, "get", ext4.image, "/", dest)
    assert "symbolic link" in line
    assert victim.read_bytes() == b"keep me\n"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


def test_get_refuses_a_planted_directory_symlink(ext4: images.Built, tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "docs").symlink_to(outside)
    fails(5, "get", ext4.image, "/docs", dest)
    fails(5, "get", ext4.image, "/", dest)
    assert list(outside.iterdir()) == []


def test_get_never_overwrites(ext4: images.Built, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_bytes(b"mine\n")
    fails(5, "get", ext4.image, "/hello.txt", tmp_path)
    assert (tmp_path / "hello.txt").read_bytes() == b"mine\n"


def test_get_symlinks_are_written_not_followed(ext4: images.Built, tmp_path: Path) -> None:
    passwd_before = Path("/etc/passwd").stat()
    ok("get", ext4.image, "/", tmp_path)
    assert str((tmp_path / "docs" / "link-escape").readlink()) == "../../../../etc/passwd"
    assert str((tmp_path / "link-etc-passwd").readlink()) == "/etc/passwd"
    assert str((tmp_path / "loop-a").readlink()) == "loop-b"
    after = Path("/etc/passwd").stat()
    assert (after.st_mtime_ns, after.st_size) == (passwd_before.st_mtime_ns, passwd_before.st_size)


def test_get_into_a_file_is_an_error(ext4: images.Built, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    fails(1, "get", ext4.image, "/hello.txt", tmp_path / "a-file")


def test_get_skips_what_it_cannot_restore_and_exits_7(tmp_path: Path) -> None:
    """Issue 8, defect 13: one bad entry never stops the rest of the restore."""
    image = broken.broken_entries_image()
    proc = run("get", image, "/", tmp_path)
    err = proc.stderr.decode("utf-8", "replace").splitlines()
    assert proc.returncode == 7, err
    *skipped, summary = err
    assert summary.startswith("filerestore: error: 6 entries could not be restored")
    shown = {line.split(": ", 2)[1].removeprefix("skipped ") for line in skipped}
    assert shown == {printable(p) for p in broken.BROKEN}
    assert all(len(line.split(": ", 2)) == 3 for line in skipped)  # each with its reason
    for rel, data in broken.GOOD.items():
        assert (tmp_path / rel).read_bytes() == data


def test_a_short_read_is_an_error_for_cat_and_a_skipped_file_for_get(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The read loop of cat and get refuses a reader that returns less than asked (the CLI
    in process, its image opened for real and the file's reader cut short)."""
    real = open_stack

    def short_stack(*args: Any, **kwargs: Any) -> Stack:
        stack = real(*args, **kwargs)
        real_open = stack.fs.open
        stack.fs.open = lambda path: ShortReader(real_open(path), cut=5000)  # type: ignore[method-assign]
        return stack

    monkeypatch.setattr("filerestore.restore.open_stack", short_stack)
    image = broken.broken_entries_image()
    assert main(["cat", str(image), "/big.bin"]) == 4
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and "short read of /big.bin" in err[0]
    assert main(["get", str(image), "/big.bin", str(tmp_path)]) == 7
    err = capfd.readouterr().err.splitlines()
    assert err[0].startswith("filerestore: skipped /big.bin: short_read: short read")
    assert list(tmp_path.iterdir()) == []
