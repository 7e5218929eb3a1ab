"""Search the index: entries by name, path, kind, size and time, across visible backups.

A result (:class:`PathHit`) is one path of one disk's volume with its versions that match,
each with the visible backups that hold it. Pages are keyset-paged: with a name or glob, in
the order of the matching names' ids (the order names were first indexed), then volume and
directory; without one, by volume, directory and name. A page may hold fewer hits than asked
while more follow (``next_cursor`` set): a page stops after looking at ``SCAN_BUDGET`` names
or versions, so a query that matches almost nothing still answers in bounded time.

Name matching is case-insensitive: ``name`` matches a substring, ``glob`` the whole name
(``*``, ``?``, ``[...]``). SQLite finds candidate names through its FTS5 trigram table (a
pattern with fewer than three consecutive literal characters reads every name); its case
folding is ASCII-only (SQLite's LIKE). PostgreSQL uses pg_trgm's GIN index with ILIKE and
``~*``, and folds case by its locale.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from filerestore.db.engine import Database
from filerestore.db.models_index import FTS_TABLE
from filerestore.errors import UsageError
from filerestore.fs.entry import EntryKind
from filerestore.index.paths import DirPaths, dir_no_of
from filerestore.index.records import PathHit, SearchPage
from filerestore.index.rows import KIND_CODES
from filerestore.index.store import IndexStore
from filerestore.index.text import from_db, to_db
from filerestore.index.visible import (
    VERSION_COLUMNS,
    BackupFilter,
    LineBackups,
    version_of,
    visible_lines,
    volumes_of,
)
from filerestore.index.volume_writer import ROOT_DIR_NO, ROOT_PARENT

NAME_CHUNK = 256  # matching names read at a time
SCAN_BUDGET = 20_000  # names (or versions) one page looks at before it stops
MAX_LIMIT = 1000


@dataclass(frozen=True)
class SearchQuery:
    name: str | None = None
    glob: str | None = None
    path_prefix: str | None = None
    kind: EntryKind | None = None
    size_min: int | None = None
    size_max: int | None = None
    mtime_from: datetime | None = None
    mtime_to: datetime | None = None
    vm_name: str | None = None
    disk_name: str | None = None
    backup_ids: Collection[int] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = 50
    cursor: str | None = None


def search(db: Database, query: SearchQuery, allowed: Collection[int]) -> SearchPage:
    """One page of hits for ``query`` among the backups ``allowed`` (see the module doc)."""
    if not 0 < query.limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LIMIT}")
    if query.name is not None and query.glob is not None:
        raise UsageError("give a name substring or a glob, not both")
    with db.read() as session:
        store = IndexStore(session)
        lines = visible_lines(
            store,
            BackupFilter(
                allowed,
                query.backup_ids,
                query.vm_name,
                query.disk_name,
                query.created_from,
                query.created_to,
            ),
        )
        if not lines:
            return SearchPage((), None)
        return _Search(store, query, lines).page()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fts_literal(text: str) -> str:
    """``text`` for a LIKE without ESCAPE: ``%`` and ``_`` become ``_`` (any one character),
    so the pattern matches a superset; the exact check is made beside it."""
    return text.replace("%", "_")


def _glob_parts(glob: str) -> Iterator[tuple[str, str]]:
    """``glob`` as (what, text): ``("*", "")``, ``("?", "")``, ``("[", the class's body)``,
    or ``("", one literal character)`` (a ``[`` that no ``]`` closes is a literal)."""
    i = 0
    while i < len(glob):
        ch = glob[i]
        if ch == "[" and (end := glob.find("]", i + 2)) != -1:
            yield ch, glob[i + 1 : end]
            i = end
        elif ch in "*?":
            yield ch, ""
        else:
            yield "", ch
        i += 1


#: a glob's wildcards in LIKE (a class is any one character there)
_LIKE_WILDCARDS = {"*": "%", "?": "_", "[": "_"}


def glob_to_like(glob: str, literal: Callable[[str], str] = _like_escape) -> str:
    """A LIKE pattern matching at least every name ``glob`` matches (a class is one ``_``)."""
    return "".join(
        _LIKE_WILDCARDS[what] if what else literal(text) for what, text in _glob_parts(glob)
    )


def _regex_part(what: str, text: str) -> str:
    if what == "*":
        return ".*"
    if what == "?":
        return "."
    if what == "[":
        body = "^" + text[1:] if text.startswith("!") else text
        return "[" + body.replace("\\", "\\\\") + "]"
    return re.escape(text)


def glob_to_regex(glob: str) -> str:
    """An anchored POSIX regular expression for ``glob`` (PostgreSQL's ``~*``)."""
    return "^" + "".join(_regex_part(what, text) for what, text in _glob_parts(glob)) + "$"


def _iglob(pattern: str, stored: str) -> bool:
    return fnmatch.fnmatchcase(from_db(stored).casefold(), pattern.casefold())


class _Search:
    def __init__(self, store: IndexStore, q: SearchQuery, lines: dict[int, LineBackups]) -> None:
        self.store = store
        self.q = q
        self.lines = lines
        self.volumes = volumes_of(store, lines)
        self.paths: dict[int, DirPaths] = {}
        self.prefix_dirs: dict[int, int | None] = {}
        self.scanned = 0

    # --- the page --------------------------------------------------------------------------

    def page(self) -> SearchPage:
        hits: list[PathHit] = []
        last: tuple[int, int, int] | None = None
        by_name = self.q.name is not None or self.q.glob is not None
        cursor = _parse_cursor(self.q.cursor, "n" if by_name else "p")
        groups = self._by_name(cursor) if by_name else self._by_place(cursor)
        exhausted = True
        for key, rows in groups:
            hit = self._hit(key, rows, by_name)
            last = key
            if hit is not None:
                hits.append(hit)
            if len(hits) >= self.q.limit or self.scanned >= SCAN_BUDGET:
                exhausted = False
                break
        if exhausted or last is None:
            return SearchPage(tuple(hits), None)
        return SearchPage(tuple(hits), f"{'n' if by_name else 'p'}:{last[0]}:{last[1]}:{last[2]}")

    def _hit(self, key: tuple[int, int, int], rows: list[Any], by_name: bool) -> PathHit | None:
        volume_id, parent_no, _ = (key[1], key[2], key[0]) if by_name else key
        line_id, volume = self.volumes[volume_id]
        line = self.lines[line_id]
        versions = []
        for row in rows:
            held = line.holding(row[0], row[1])
            if held:
                versions.append(version_of(row, held))
        if not versions:
            return None
        name = from_db(rows[0][-1])
        paths = self.paths.setdefault(volume_id, DirPaths(self.store, volume_id))
        if self.q.path_prefix is not None and not self._under_prefix(volume_id, parent_no):
            return None
        newest = line.refs[-1]
        return PathHit(
            repository=newest.repository,
            vm_name=newest.vm_name,
            disk_name=newest.disk_name,
            volume=volume,
            path=paths.entry_path(parent_no, name),
            name=name,
            versions=tuple(versions),
        )

    def _under_prefix(self, volume_id: int, parent_no: int) -> bool:
        assert self.q.path_prefix is not None
        if volume_id not in self.prefix_dirs:
            self.prefix_dirs[volume_id] = dir_no_of(self.store, volume_id, self.q.path_prefix)
        top = self.prefix_dirs[volume_id]
        if top is None:
            return False
        if parent_no == ROOT_PARENT:  # the root itself
            return top == ROOT_DIR_NO
        return top in self.paths[volume_id].ancestors(parent_no)

    # --- candidates ------------------------------------------------------------------------

    def _filters(self) -> tuple[str, list[Any]]:
        sql, params = "", []
        q = self.q
        if q.kind is not None:
            sql += " AND v.kind = ?"
            params.append(KIND_CODES[q.kind])
        if q.size_min is not None:
            sql += " AND v.size >= ?"
            params.append(q.size_min)
        if q.size_max is not None:
            sql += " AND v.size <= ?"
            params.append(q.size_max)
        if q.mtime_from is not None:
            sql += " AND v.mtime_ns >= ?"
            params.append(int(q.mtime_from.timestamp() * 1_000_000) * 1000)
        if q.mtime_to is not None:
            sql += " AND v.mtime_ns <= ?"
            params.append(int(q.mtime_to.timestamp() * 1_000_000) * 1000)
        return sql, params

    def _name_ids(self, after: int) -> list[int]:
        """The next NAME_CHUNK ids of matching names above ``after``."""
        q, store = self.q, self.store
        if store.dialect == "postgresql":
            if q.name is not None:
                cond, arg = "name ILIKE ?", f"%{_like_escape(to_db(q.name))}%"
            else:
                assert q.glob is not None
                cond, arg = "name ~* ?", glob_to_regex(to_db(q.glob))
            sql = f"SELECT id FROM index_names WHERE {cond} AND id > ? ORDER BY id LIMIT ?"
            rows = store.query(sql, (arg, after, NAME_CHUNK), custom_plan=True)
            return [r[0] for r in rows]
        # FTS5 uses its trigram index for ``LIKE`` only without ``ESCAPE`` (SQLite 3.40:
        # with it, every name is read); so the index gets a pattern with no escapes that
        # matches a superset, and the exact test is a second condition on its candidates
        extra, args = "", []
        if q.name is not None:
            text = to_db(q.name)
            like = f"%{_fts_literal(text)}%"
            if any(ch in text for ch in "%_\\"):
                extra, args = " AND like(?, name, '\\')", [f"%{_like_escape(text)}%"]
        else:
            assert q.glob is not None
            like = glob_to_like(to_db(q.glob), _fts_literal)
            store.raw.create_function("fr_iglob", 2, _iglob, deterministic=True)
            extra, args = " AND fr_iglob(?, name)", [q.glob]
        sql = (
            f"SELECT rowid FROM {FTS_TABLE} WHERE name LIKE ?{extra} "
            "AND rowid > ? ORDER BY rowid LIMIT ?"
        )
        return [r[0] for r in store.query(sql, (like, *args, after, NAME_CHUNK))]

    def _by_name(
        self, cursor: tuple[int, int, int] | None
    ) -> Iterator[tuple[tuple[int, int, int], list[Any]]]:
        """(name id, volume, parent) groups of version rows, in that order, from ``cursor``."""
        filters, params = self._filters()
        after = cursor[0] - 1 if cursor else -(1 << 62)
        index = self.store.indexed_by("ix_index_versions_name")
        while self.scanned < SCAN_BUDGET:
            ids = self._name_ids(after)
            if not ids:
                return
            after = ids[-1]
            self.scanned += len(ids)
            marks = ",".join("?" * len(ids))
            rows = self.store.query(
                f"SELECT v.name_id, v.volume_id, v.parent_no, {VERSION_COLUMNS}, n.name "
                f"FROM index_versions v{index} JOIN index_names n ON n.id = v.name_id "
                f"WHERE v.name_id IN ({marks}){filters}",
                (*ids, *params),
            )
            rows = [r for r in rows if r[1] in self.volumes]
            rows.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
            for key, group in groupby(rows, key=lambda r: (r[0], r[1], r[2])):
                if cursor is not None and key <= cursor:
                    continue
                yield key, [r[3:] for r in group]
            if len(ids) < NAME_CHUNK:
                return  # the last matching names: no need to ask the name index again

    def _by_place(
        self, cursor: tuple[int, int, int] | None
    ) -> Iterator[tuple[tuple[int, int, int], list[Any]]]:
        """(volume, parent, name id) groups of version rows, in that order, from ``cursor``."""
        filters, params = self._filters()
        for volume_id in sorted(self.volumes):
            if cursor is not None and volume_id < cursor[0]:
                continue
            after = (cursor[1], cursor[2]) if cursor and volume_id == cursor[0] else (-1, -1)
            while self.scanned < SCAN_BUDGET:
                rows = self.store.query(
                    f"SELECT v.volume_id, v.parent_no, v.name_id, {VERSION_COLUMNS}, n.name "
                    "FROM index_versions v JOIN index_names n ON n.id = v.name_id "
                    "WHERE v.volume_id = ? AND (v.parent_no > ? OR (v.parent_no = ? "
                    f"AND v.name_id > ?)){filters} "
                    "ORDER BY v.parent_no, v.name_id, v.first_seq LIMIT ?",
                    (volume_id, after[0], after[0], after[1], *params, NAME_CHUNK),
                )
                if not rows:
                    break
                self.scanned += len(rows)
                full = len(rows) == NAME_CHUNK
                complete = rows
                if full:  # the last group may go on past this chunk: the next one reads it
                    last = (rows[-1][1], rows[-1][2])
                    complete = [r for r in rows if (r[1], r[2]) != last] or rows
                after = (complete[-1][1], complete[-1][2])
                for key, group in groupby(complete, key=lambda r: (r[0], r[1], r[2])):
                    yield key, [r[3:] for r in group]
                if not full:
                    break


def _parse_cursor(cursor: str | None, kind: str) -> tuple[int, int, int] | None:
    if cursor is None:
        return None
    parts = cursor.split(":")
    try:
        if len(parts) != 4 or parts[0] != kind:
            raise ValueError(cursor)
        a, b, c = int(parts[1]), int(parts[2]), int(parts[3])
        if not all(-(2**63) <= x < 2**63 for x in (a, b, c)):
            raise ValueError(cursor)  # no database column holds it
        return a, b, c
    except ValueError:
        raise UsageError("invalid search cursor (pass back next_cursor as given)") from None
