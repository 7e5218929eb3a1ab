"""The name dictionary's cache of an index pass (filerestore.index.store)."""

from __future__ import annotations

import pytest

from filerestore.db import Database
from filerestore.index.store import IndexStore


def test_the_name_cache_starting_again_keeps_every_name_asked_for(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the cache is full it starts again; the names of that call that it held before
    must come back too (they went with it), or a directory mixing known and new names
    fails its lookup."""
    monkeypatch.setattr("filerestore.index.store.NAME_CACHE_MAX", 2)
    with db.write() as s:
        store = IndexStore(s)
        first = dict(store.name_ids(["a.txt", "b.txt", "c.txt"]))
        ids = store.name_ids(["a.txt", "d.txt"])  # one known, one new: the cache is full
        assert ids["a.txt"] == first["a.txt"]
        assert ids["d.txt"] not in first.values()
        stored = dict(store.query("SELECT name, id FROM index_names"))
        assert stored == {**first, "d.txt": ids["d.txt"]}
