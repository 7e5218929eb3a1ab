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


def test_names_new_and_known_are_given_the_ids_the_index_holds(db: Database) -> None:
    """A store inserts a call's names first while the calls before were mostly new names
    (a full pass) and looks them up first once they were mostly known (an incremental); on
    either path a name the index held already keeps its id and none is stored twice."""
    with db.write() as s:
        held = dict(IndexStore(s).name_ids(["k1", "k2", "k3", "k5", "k6"]))
    with db.write() as s:
        store = IndexStore(s)  # an empty cache: every name below is asked of the database
        first = dict(store.name_ids(["k1", "k2", "k3", "n4"]))  # mostly known, inserted first
        second = dict(store.name_ids(["k5", "k6", "n7"]))  # looked up first now
        third = dict(store.name_ids(["n8", "n9", "n10", "k1"]))
        stored = store.query("SELECT name, id FROM index_names")
    assert len(stored) == len({name for name, _ in stored}) == 10
    by_name = dict(stored)
    for name, ident in {**held, **first, **second, **third}.items():
        assert by_name[name] == ident, name
    assert {n: by_name[n] for n in held} == held
