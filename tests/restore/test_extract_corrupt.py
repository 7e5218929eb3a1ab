"""Extraction of entries a corrupt image can claim: a symlink target with a NUL byte (issue
8, defect 5: "unexpected ValueError: embedded null byte"), an empty target, a name that is no
byte string (found by fuzzing). Each such entry is skipped with a one-line reason and nothing
is written for it; the rest of the tree is restored (defect 13)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filerestore.fs.entry import EntryKind
from filerestore.restore.extract import extract
from fuzz.targets.guest_paths import FuzzedFilesystem, Node


def _tree(name: str, target: str) -> FuzzedFilesystem:
    root = Node(0, EntryKind.DIR, "")
    root.children.append((name, Node(1, EntryKind.SYMLINK, target)))
    root.children.append(("good", Node(2, EntryKind.SYMLINK, "elsewhere")))
    return FuzzedFilesystem(root)


@pytest.mark.parametrize(
    ("name", "target", "reason"),
    [
        ("link", "a\x00b", "NUL byte"),
        ("link", "", "empty"),
        ("link", "x\ud800", "not a sequence of bytes"),
        ("bad\ud801", "t", "not a sequence of bytes"),
    ],
)
def test_corrupt_entry_is_skipped_with_its_reason(
    tmp_path: Path, name: str, target: str, reason: str
):
    result = extract(_tree(name, target), "/", tmp_path / "out")
    assert [f.path for f in result.failed] == [f"/{name}"]
    assert reason in result.failed[0].reason
    assert "\n" not in result.failed[0].reason
    assert os.listdir(tmp_path / "out") == ["good"]
    assert os.readlink(tmp_path / "out" / "good") == "elsewhere"


def test_undecodable_bytes_are_written_as_they_were(tmp_path: Path):
    name, target = os.fsdecode(b"n\xff"), os.fsdecode(b"caf\xe9")
    root = Node(0, EntryKind.DIR, "")
    root.children.append((name, Node(1, EntryKind.SYMLINK, target)))
    extract(FuzzedFilesystem(root), "/", tmp_path)
    assert os.readlink(os.fsencode(tmp_path) + b"/n\xff") == b"caf\xe9"
