"""The resolver on structures only a corrupt image holds (found by fuzzing, issue 8): an entry
without a name, and a root that is not a directory. Built in memory with the fuzz harness's
filesystem (fuzz/targets/guest_paths.py), which goes through fs/base.py like every backend."""

from __future__ import annotations

import pytest

from filerestore.errors import FilesystemError
from filerestore.fs.entry import EntryKind
from fuzz.targets.guest_paths import FuzzedFilesystem, Node


def test_an_entry_without_a_name_is_listed_under_a_name_that_resolves_to_it():
    root = Node(0, EntryKind.DIR, "")
    docs = Node(1, EntryKind.DIR, "")
    root.children.append(("docs", docs))
    docs.children.append(("", Node(2, EntryKind.FILE, "")))
    fs = FuzzedFilesystem(root)
    (entry,) = fs.list_dir("/docs")
    assert entry.path == "/docs/<empty-name-2>" and entry.kind is EntryKind.FILE
    assert fs.stat(entry.path).inode == 2
    assert fs.stat("/docs/").inode == 1  # the directory itself, as before
    assert [e.path for e in fs.walk("/")] == ["/docs", "/docs/<empty-name-2>"]


@pytest.mark.parametrize("kind", [EntryKind.FILE, EntryKind.SYMLINK, EntryKind.OTHER])
def test_a_root_that_is_not_a_directory_is_a_corrupt_filesystem(kind: EntryKind):
    fs = FuzzedFilesystem(Node(0, kind, "/"))
    for call in (lambda: fs.stat("/"), lambda: list(fs.list_dir("/")), lambda: list(fs.walk())):
        with pytest.raises(FilesystemError, match="the root is not a directory"):
            call()
