"""Exit codes and the one-line error contract of the CLI."""

from __future__ import annotations

import array
import fcntl
import inspect
import signal
import subprocess
import termios
import time
from pathlib import Path
from typing import IO

import pytest

from filerestore import errors
from filerestore.cli import exit_codes
from tests.cli.runner import SCRIPT, fails, ok, run
from tests.imagebuild import gpt_ext4 as images
from tests.imagebuild.hostile import HOSTILE, HostileImage

# --- the table ---------------------------------------------------------------------------------


def error_classes() -> list[type[errors.FileRestoreError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.FileRestoreError)
    ]


def test_every_error_class_has_an_exit_code() -> None:
    classes = error_classes()
    assert len(classes) > 20
    for cls in classes:
        entry = exit_codes.table_entry(cls)
        # a new category (a direct child of the base) must be placed in the table explicitly,
        # not fall through to the generic code unnoticed
        if cls.__bases__ == (errors.FileRestoreError,):
            assert entry is cls, f"{cls.__name__} is a new category: add it to EXIT_CODES"
        assert exit_codes.EXIT_CODES[entry] in (1, 2, 3, 4, 5, 6, 8)


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.AmbiguousVolumeError, 2),
        (errors.IsADirectoryError_, 2),
        (errors.ImageNotFoundError, 3),
        (errors.PathNotFoundError, 3),
        (errors.VolumeNotFoundError, 3),
        (errors.CorruptImageError, 4),
        (errors.UnsupportedImageError, 4),
        (errors.NoFilesystemError, 4),
        (errors.BackingFileRefusedError, 5),
        (errors.DestinationEscapeError, 5),
        (errors.SymlinkLoopError, 5),
        (errors.PortInUseError, 8),  # not 3: that is "not found"
    ],
)
def test_exit_code_of(cls: type[errors.FileRestoreError], code: int) -> None:
    assert exit_codes.EXIT_CODES[exit_codes.table_entry(cls)] == code


# --- through the real command -----------------------------------------------------------------


def test_missing_image(tmp_path: Path) -> None:
    fails(3, "ls", tmp_path / "nope.qcow2")


def test_missing_path(ext4: images.Built) -> None:
    line = fails(3, "cat", ext4.image, "/no/such/file")
    assert line.endswith("no such file or directory: /no")
    fails(3, "stat", ext4.image, "/nothing-here")
    fails(3, "ls", ext4.image, "/link-dangling/x")


def test_cat_of_a_directory_is_a_usage_error(ext4: images.Built) -> None:
    fails(2, "cat", ext4.image, "/docs")


def test_symlink_loop_is_refused(ext4: images.Built) -> None:
    fails(5, "cat", ext4.image, "/loop-a")


def test_ambiguous_volume_lists_the_choices(two: images.Built) -> None:
    line = fails(2, "ls", two.image, "/")
    assert "--volume" in line
    assert "p1 (ext4" in line and "'alpha'" in line
    assert "p3 (ext4" in line and "'beta'" in line
    assert "p2" not in line  # no filesystem there


def test_unknown_volume(two: images.Built) -> None:
    line = fails(3, "ls", two.image, "--volume", "p9")
    assert "p1, p2, p3" in line


def test_volume_without_filesystem(two: images.Built) -> None:
    fails(4, "ls", two.image, "--volume", "p2")


@pytest.mark.parametrize(
    "args",
    [
        ["ls", "--no-such-option", "x"],
        ["cat"],
        ["frobnicate"],
        ["get", "image-only"],
    ],
)
def test_bad_usage(args: list[str]) -> None:
    fails(2, *args)


def test_bare_command_prints_help() -> None:
    proc = run()
    assert proc.returncode == 2
    assert b"Usage: filerestore" in proc.stdout


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_image_is_refused(tmp_path: Path, hostile: HostileImage) -> None:
    image = hostile.build(tmp_path)
    code = exit_codes.EXIT_CODES[exit_codes.table_entry(hostile.error)]
    line = fails(code, "ls", image, "--repository", tmp_path / "repo")
    if hostile.match not in line:
        # damage that only shows when its bytes are read: `ls` reads just the signatures, so
        # the image may instead hold no recognisable filesystem: still "bad image", exit 4
        assert issubclass(hostile.error, errors.ImageError), line
        assert "no supported filesystem" in line


def test_truncated_header_is_a_bad_image(tmp_path: Path, ext4: images.Built) -> None:
    image = tmp_path / "truncated.qcow2"
    image.write_bytes(ext4.image.read_bytes()[:40])
    fails(4, "inspect", image)


def test_host_error_is_one_line(ext4: images.Built, tmp_path: Path) -> None:
    # DEST's parent is a file: the host says ENOTDIR/EEXIST, reported without a traceback
    (tmp_path / "file").write_bytes(b"")
    line = fails(1, "get", ext4.image, "/hello.txt", tmp_path / "file" / "sub")
    assert "Not a directory" in line or "exists" in line


def wait_until_full(pipe: IO[bytes], proc: subprocess.Popen[bytes]) -> None:
    """Return once ``pipe`` is full: its writer is then blocked inside write(2) on a chunk
    larger than the pipe, the one place where SIGINT is certain to land (rather than inside
    a library's read callback, which may turn it into a read error)."""
    capacity = fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ)
    held = array.array("i", [0])
    while proc.poll() is None:
        fcntl.ioctl(pipe.fileno(), termios.FIONREAD, held)
        if held[0] >= capacity:
            return
        time.sleep(0.01)
    raise AssertionError(f"cat ended before filling the pipe: {proc.returncode}")


def test_interrupt_exits_130(ext4: images.Built) -> None:
    proc = subprocess.Popen(
        [SCRIPT, "cat", ext4.image, "/sparse.bin"],  # 32 MiB, written in 1 MiB chunks
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # as from a terminal: a runner started in the background by a non-interactive shell
        # hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    wait_until_full(proc.stdout, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.decode().splitlines() == ["filerestore: error: interrupted"]


def test_success_writes_nothing_to_stderr(ext4: images.Built) -> None:
    assert ok("cat", ext4.image, "/hello.txt") == b"hello, world\n"
