"""The one order of listings: the API's pages and the CLI's ``ls`` (see
:mod:`filerestore.restore.browse`).

Names sort by ``casefold()``, then by the exact name; directories first unless
``dirs_first=False``; ``descending`` reverses within each group. Kept apart from the paged
listings so that ``filerestore ls`` sorts without importing the cursors and their digests
(start-up time, issue 14).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from filerestore.fs.entry import Entry, EntryKind


class SortKey(StrEnum):
    NAME = "name"
    SIZE = "size"
    MTIME = "mtime"


def _sort_value(entry: Entry, sort: SortKey) -> int:
    if sort is SortKey.SIZE:
        return entry.size
    if sort is SortKey.MTIME:
        return -1 if entry.mtime_ns is None else entry.mtime_ns
    return 0


def sort_entries(
    entries: Iterable[Entry],
    sort: SortKey = SortKey.NAME,
    descending: bool = False,
    dirs_first: bool = True,
) -> list[Entry]:
    """``entries`` in a listing's order: the one order of the API's listings and the CLI's
    ``ls``."""
    groups: tuple[list[tuple[int, str, str, Entry]], list[tuple[int, str, str, Entry]]]
    groups = ([], [])
    for entry in entries:
        first = dirs_first and entry.kind is EntryKind.DIR
        groups[0 if first else 1].append(
            (_sort_value(entry, sort), entry.name.casefold(), entry.name, entry)
        )
    out: list[Entry] = []
    for group in groups:
        group.sort(key=lambda item: item[:3], reverse=descending)
        out.extend(item[3] for item in group)
    return out


def sort_names(
    named: Iterable[tuple[str, bool]], descending: bool = False, dirs_first: bool = True
) -> list[str]:
    """The names of (name, is a directory) pairs in the order :func:`sort_entries` gives
    their entries by name: what a page in name order needs, without the entries.

    By (casefold, name) as two sorts of plain strings, the exact name first and then,
    stably, the folded one: no key tuple per name (a 100,000-entry directory's page)."""
    named = list(named)
    if dirs_first:
        groups = ([n for n, is_dir in named if is_dir], [n for n, is_dir in named if not is_dir])
    else:
        groups = ([], [n for n, _ in named])
    out: list[str] = []
    for group in groups:
        group.sort(reverse=descending)
        group.sort(key=str.casefold, reverse=descending)
        out += group
    return out
