"""Paths in the index: a path to its key (parent directory number, name id) and back.

Directories are rows of ``index_dirs`` (volume, dir_no, parent_no, name_id); everything
else is known by its directory and name. Both directions are a few primary-key lookups per
path component, kept in a per-query cache.
"""

from __future__ import annotations

from filerestore.errors import FileRestoreError
from filerestore.fs.base import split_path
from filerestore.index.store import IndexStore
from filerestore.index.text import from_db, to_db
from filerestore.index.volume_writer import ROOT_DIR_NO, ROOT_PARENT

_MAX_DEPTH = 4096  # directories above one: more is a loop in a corrupt index


class DirPaths:
    """Directory numbers of one volume to their paths and ancestors."""

    def __init__(self, store: IndexStore, volume_id: int) -> None:
        self.store = store
        self.volume_id = volume_id
        self._parent: dict[int, int] = {ROOT_DIR_NO: ROOT_DIR_NO}
        self._path: dict[int, str] = {ROOT_DIR_NO: "/"}

    def of(self, dir_no: int) -> str:
        pending: list[tuple[int, str]] = []
        no = dir_no
        while no not in self._path:
            rows = self.store.query(
                "SELECT d.parent_no, n.name FROM index_dirs d JOIN index_names n "
                "ON n.id = d.name_id WHERE d.volume_id = ? AND d.dir_no = ?",
                (self.volume_id, no),
            )
            if not rows or rows[0][0] == no or len(pending) > _MAX_DEPTH:
                raise FileRestoreError(f"index: directory {dir_no} has no path (corrupt index)")
            pending.append((no, from_db(rows[0][1])))
            self._parent[no] = rows[0][0]
            no = rows[0][0]
        for no, name in reversed(pending):
            self._path[no] = f"{self._path[self._parent[no]].rstrip('/')}/{name}"
        return self._path[dir_no]

    def entry_path(self, parent_no: int, name: str) -> str:
        """The path of the entry ``name`` in directory ``parent_no`` (parent 0: the root)."""
        if parent_no == ROOT_PARENT:
            return "/"
        return f"{self.of(parent_no).rstrip('/')}/{name}"

    def ancestors(self, dir_no: int) -> list[int]:
        """``dir_no`` and every directory above it, up to the root."""
        self.of(dir_no)
        out = [dir_no]
        while out[-1] != ROOT_DIR_NO:
            out.append(self._parent[out[-1]])
        return out


def name_id_of(store: IndexStore, name: str) -> int | None:
    rows = store.query("SELECT id FROM index_names WHERE name = ?", (to_db(name),))
    return int(rows[0][0]) if rows else None


def dir_no_of(store: IndexStore, volume_id: int, path: str) -> int | None:
    """The number of directory ``path`` in the volume (it may be gone: numbers stay)."""
    no = ROOT_DIR_NO
    for part in split_path(path):
        if part == "..":
            raise FileRestoreError("index paths are absolute and clean: '..' is refused")
        name_id = name_id_of(store, part)
        if name_id is None:
            return None
        rows = store.query(
            "SELECT dir_no FROM index_dirs WHERE volume_id = ? AND parent_no = ? AND name_id = ?",
            (volume_id, no, name_id),
        )
        if not rows:
            return None
        no = int(rows[0][0])
    return no


def entry_key(store: IndexStore, volume_id: int, path: str) -> tuple[int, int] | None:
    """(parent dir, name id) of the entry at ``path``; None when the index never held it."""
    parts = split_path(path)
    if not parts:
        root = name_id_of(store, "")
        return None if root is None else (ROOT_PARENT, root)
    parent = dir_no_of(store, volume_id, "/".join(parts[:-1]))
    name_id = name_id_of(store, parts[-1])
    if parent is None or name_id is None:
        return None
    return parent, name_id
