"""Extraction of entries a corrupt image can claim: a symlink target with a NUL byte (issue
8, defect 5: "unexpected ValueError: embedded null byte"), an empty target, a name that is no
byte string. Each is a FilesystemError with a one-line reason, and nothing is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filerestore.cli.extract import extract
from filerestore.errors import FilesystemError
from filerestore.fs.entry import EntryKind
from fuzz.targets.guest_paths import FuzzedFilesystem, Node


def _tree(name: str, target: str) -> FuzzedFilesystem:
    root = Node(0, EntryKind.DIR, "")
    root.children.append((name, Node(1, EntryKind.SYMLINK, target)))
    return FuzzedFilesystem(root)


@pytest.mark.parametrize(
    ("name", "target", "reason"),
    [
        ("link", "a\x00b", "target holding a NUL byte"),
        ("link", "", "empty target"),
        ("link", "x\ud800", "target that is no byte string"),
        ("bad\ud801", "t", "name that is no byte string"),
    ],
)
def test_corrupt_entry_is_a_filesystem_error(tmp_path: Path, name: str, target: str, reason: str):
    with pytest.raises(FilesystemError, match=reason) as caught:
        extract(_tree(name, target), "/", tmp_path / "out")
    assert "\n" not in str(caught.value)
    assert os.listdir(tmp_path / "out") == []


def test_undecodable_bytes_are_written_as_they_were(tmp_path: Path):
    name, target = os.fsdecode(b"n\xff"), os.fsdecode(b"caf\xe9")
    extract(_tree(name, target), "/", tmp_path)
    assert os.readlink(os.fsencode(tmp_path) + b"/n\xff") == b"caf\xe9"
