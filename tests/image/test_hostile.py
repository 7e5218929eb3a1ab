"""Every hostile image is refused with its specific error, fast, opening nothing outside."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import filerestore
from filerestore.image import open_image
from tests.image.conftest import sha256_of_reader
from tests.imagebuild.hostile import DATA_PATTERN, HOSTILE, HostileImage, qcow2_image

_recording: list[str] | None = None
_recording_thread: int | None = None


_O_PATH = getattr(os, "O_PATH", 0)


# Python code imported on first use (our VMDK reader, zlib-ng): not data, never a backup
_CODE_DIRS = tuple(
    os.path.join(d, "")
    for d in (os.path.dirname(filerestore.__file__), sys.prefix, sys.base_prefix)
)
_CODE_SUFFIXES = (".py", ".pyc", ".so")


def _audit(event: str, args: tuple[object, ...]) -> None:
    """Records every open that can read data. The store walks a repository with O_PATH
    descriptors (which open no data, and whose relative names the hook cannot place), then
    reopens the file it checked through /proc/self/fd: that link is resolved here, before
    the open happens, to the file it will open."""
    if event == "open" and _recording is not None and threading.get_ident() == _recording_thread:
        path, flags = args[0], args[2]
        if isinstance(flags, int) and _O_PATH and flags & _O_PATH:
            return
        if isinstance(path, str | bytes | os.PathLike):
            name = os.fsdecode(path)
            if name.startswith("/proc/self/fd/"):
                name = os.readlink(name)
            if name.startswith(_CODE_DIRS) and name.endswith(_CODE_SUFFIXES):
                return
            _recording.append(name)


sys.addaudithook(_audit)


@contextmanager
def recording_opens() -> Iterator[list[str]]:
    global _recording, _recording_thread
    opened: list[str] = []
    _recording, _recording_thread = opened, threading.get_ident()
    try:
        yield opened
    finally:
        _recording, _recording_thread = None, None


def test_audit_hook_sees_os_open(tmp_path: Path) -> None:
    with recording_opens() as opened:
        os.close(os.open(tmp_path, os.O_RDONLY))
        fd = os.open(tmp_path, os.O_RDONLY)
        os.close(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY))
        os.close(fd)
        os.close(os.open(tmp_path, os.O_RDONLY | _O_PATH))
    assert opened == [str(tmp_path)] * 3


def test_baseline_image_is_valid_for_qemu(tmp_path: Path) -> None:
    """The image every hostile entry starts from is one qemu-img accepts and reads as we do."""
    image = tmp_path / "base.qcow2"
    image.write_bytes(qcow2_image())
    subprocess.run(["qemu-img", "check", str(image)], check=True, capture_output=True)
    raw = tmp_path / "base.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(raw)], check=True)
    expected = raw.read_bytes()
    assert expected[: len(DATA_PATTERN)] == DATA_PATTERN
    with open_image(image) as disk:
        assert disk.read_at(0, disk.size) == expected


@pytest.mark.parametrize("entry", HOSTILE, ids=[e.name for e in HOSTILE])
def test_hostile_image_is_refused(entry: HostileImage, tmp_path: Path) -> None:
    top = entry.build(tmp_path)
    repo = (tmp_path / "repo").resolve()
    with (
        recording_opens() as opened,
        pytest.raises(entry.error) as info,
        open_image(top, repo) as disk,
    ):
        sha256_of_reader(disk)
    assert type(info.value) is entry.error
    assert entry.match in str(info.value)
    for path in opened:
        assert Path(os.path.realpath(path)).is_relative_to(repo), f"opened {path}"
