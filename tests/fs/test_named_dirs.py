"""The name maps of paged directories (filerestore.fs.named_dirs): a name listed twice (a
corrupt directory) is renamed as every listing renames it, the maps are kept up to a number
of names, and a name the directory lacks is not found."""

from __future__ import annotations

import pytest

from filerestore.errors import PathNotFoundError
from filerestore.fs.base import pick
from filerestore.fs.named_dirs import NamedDirs


def test_a_name_listed_twice_is_renamed_as_listings_rename_it() -> None:
    dirs: NamedDirs[int] = NamedDirs()
    named = dirs.get(1, lambda: [("a", 10), ("b", 11), ("a", 12), ("a", 13)])
    assert named == {"a": 10, "b": 11, "a<duplicate-2>": 12, "a<duplicate-3>": 13}


def test_maps_are_kept_up_to_the_limit_and_none_is_not_kept() -> None:
    dirs: NamedDirs[int] = NamedDirs(limit=5)
    calls: list[int] = []

    def listing(key: int, size: int) -> list[tuple[str, int]]:
        calls.append(key)
        return [(f"n{i}", i) for i in range(size)]

    dirs.get(1, lambda: listing(1, 3))
    dirs.get(2, lambda: listing(2, 2))
    dirs.get(1, lambda: listing(1, 3))  # kept: 5 names in all
    dirs.get(3, lambda: listing(3, 2))  # 7 > 5: the least recently used (2) goes
    dirs.get(1, lambda: listing(1, 3))
    dirs.get(2, lambda: listing(2, 2))
    assert calls == [1, 2, 3, 2]
    assert dirs.get(4, lambda: None) is None
    assert dirs.get(4, lambda: [("x", 1)]) == {"x": 1}  # None was not kept


def test_pick_finds_each_name_or_names_the_missing_one() -> None:
    entries = {"a": 1, "b": 2}
    assert pick(entries, "/d", ["b", "a"]) == [2, 1]
    with pytest.raises(PathNotFoundError, match="/d/c"):
        pick(entries, "/d", ["a", "c"])
