"""Bulk reads and writes of the index tables on the driver's own connection.

An index pass writes hundreds of thousands of rows; through the ORM each would cost tens of
microseconds more than the row itself. So the pass works on the DB-API connection under the
SQLAlchemy session's transaction: SQLite through ``executemany``, PostgreSQL through ``COPY``
and array parameters. Everything else in the package uses plain SQLAlchemy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from filerestore.db.engine import Database
from filerestore.db.models_index import FTS_TABLE
from filerestore.errors import FileRestoreError
from filerestore.index.rows import META_COLUMNS, PLAIN
from filerestore.index.text import to_db

#: a new version's row: its directory and name, its fields, its hash (its volume and
#: first_seq are a batch's, and it is live: last_seq NULL)
NEW_VERSION_COLUMNS = ("parent_no", "name_id", *META_COLUMNS, "hash")
#: a plain new version's row: no symlink target, no data kept elsewhere, no hash (most
#: rows). Each value SQLite is not handed costs nothing: a NULL bound cost about as much
#: as any other value, and binding was most of an insert's time (100,000 versions: 0.43 s
#: with all 19 columns bound, 0.29 s with the 4 NULL ones left out; CPython 3.11, SQLite
#: 3.40)
PLAIN_VERSION_COLUMNS = ("parent_no", "name_id", *META_COLUMNS[:PLAIN])
DIR_COLUMNS = ("volume_id", "dir_no", "parent_no", "name_id")
_LOOKUP_CHUNK = 500  # names per SELECT ... IN (...) on SQLite (under its 999-variable limit)
NAME_CACHE_MAX = 200_000  # names kept per pass before the cache starts again
log = logging.getLogger("filerestore.index")


#: PostgreSQL: a pass that added at least this many rows, and more than a fifth of the
#: versions the planner's statistics know of, analyzes the index tables at its end
ANALYZE_MIN_ROWS = 10_000
#: PostgreSQL: versions ended per UPDATE. With a few hundred keys the planner probes the
#: primary key for each; with 900 it hashed all of a 100,000-entry volume's live rows
#: instead (EXPLAIN ANALYZE: 29 ms against ~3 ms, PostgreSQL 15, statistics fresh)
CLOSE_CHUNK = 200


def refresh_statistics(db: Database, rows_added: int) -> None:
    """PostgreSQL: ANALYZE the index tables after a pass that added more rows than their
    statistics know of. Autovacuum would, a minute or so later; a pass that comes sooner
    (the next backup of the chain) was planned on tables it took for nearly empty: a lookup
    of 500 changed inodes read a volume's 100,000 live versions through their volume alone
    (26 ms; 2.3 ms once analyzed, which took 77 ms)."""
    if db.dialect != "postgresql" or rows_added < ANALYZE_MIN_ROWS:
        return
    try:
        with db.write() as session:
            conn = session.connection()
            known = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = 'index_versions'::regclass"
            ).scalar_one()
            if rows_added * 5 > max(float(known), 0.0):  # -1: never analyzed
                conn.exec_driver_sql("ANALYZE index_versions, index_names, index_dirs")
    except (SQLAlchemyError, FileRestoreError) as exc:  # the pass is done: autovacuum will
        log.warning("index tables not analyzed after a pass: %s", exc)


def driver_connection(session: Session) -> Any:
    return session.connection().connection.driver_connection


class IndexStore:
    """The index tables of one database, on the connection of ``session``'s transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self.raw = driver_connection(session)
        self._names: dict[str, int] = {}
        self._mostly_new = True  # most names of the last PostgreSQL look-up were new

    def rebind(self, session: Session) -> None:
        """Continue on the transaction of another session (the next batch's)."""
        self.session = session
        self.raw = driver_connection(session)

    # --- names ---------------------------------------------------------------------------

    def name_ids(self, names: Iterable[str]) -> dict[str, int]:
        """A cache holding the id of each of ``names`` (as an Entry carries them); names new
        to the index are inserted."""
        cache = self._names
        wanted = set(names)
        missing = {n for n in wanted if n not in cache}
        if missing:
            if len(cache) + len(missing) > NAME_CACHE_MAX:
                # start again with this call's names alone (all of them: the ones the
                # cache held went with it)
                cache.clear()
                missing = wanted
            stored = {to_db(n): n for n in missing}
            texts = sorted(stored)
            found = (
                self._pg_names(texts) if self.dialect == "postgresql" else self._sqlite_names(texts)
            )
            for text, ident in found.items():
                cache[stored[text]] = ident
        return cache

    def _sqlite_names(self, texts: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        cur = self.raw.cursor()
        for i in range(0, len(texts), _LOOKUP_CHUNK):
            chunk = texts[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, name FROM index_names WHERE name IN ({marks})"
            found.update((text, ident) for ident, text in cur.execute(sql, chunk))
        new = [t for t in texts if t not in found]
        if new:
            # one writer at a time (BEGIN IMMEDIATE): the next ids are ours to give
            (top,) = cur.execute("SELECT coalesce(max(id), 0) FROM index_names").fetchone()
            rows = list(enumerate(new, top + 1))
            self.insert_sqlite_names(rows)
            found.update((text, ident) for ident, text in rows)
        return found

    def insert_sqlite_names(self, rows: Sequence[tuple[int, str]]) -> None:
        """Insert names new to a SQLite index as (id, stored name), with their trigrams."""
        cur = self.raw.cursor()
        cur.executemany("INSERT INTO index_names (id, name) VALUES (?, ?)", rows)
        # the trigram index is written here, not by a trigger (migration 0003 says why)
        cur.executemany(f"INSERT INTO {FTS_TABLE} (rowid, name) VALUES (?, ?)", rows)

    def _pg_names(self, texts: list[str]) -> dict[str, int]:
        # Names mostly new (a full pass): inserted with their ids returned, then the ones
        # the index held looked up. Mostly known (an incremental): looked up first, then
        # the rest inserted (an insert of known names cost more than a look-up; a look-up
        # of new ones 1.7 ms per 1,000 names). Either way a name another runner inserted
        # meanwhile (a conflict returns nothing) is looked up last. Sorted: two runners
        # inserting overlapping names take their locks in one order.
        found: dict[str, int] = {}
        with self.raw.cursor() as cur:

            def lookup(wanted: list[str]) -> list[str]:
                cur.execute("SELECT id, name FROM index_names WHERE name = ANY(%s)", (wanted,))
                found.update((text, ident) for ident, text in cur.fetchall())
                return [t for t in wanted if t not in found]

            def insert(wanted: list[str]) -> list[str]:
                cur.execute(
                    "INSERT INTO index_names (name) SELECT unnest(%s::text[]) "
                    "ON CONFLICT (name) DO NOTHING RETURNING id, name",
                    (wanted,),
                )
                found.update((text, ident) for ident, text in cur.fetchall())
                return [t for t in wanted if t not in found]

            if self._mostly_new:
                left = insert(texts)
                self._mostly_new = len(left) * 2 < len(texts)
                if left:
                    lookup(left)
            else:
                left = lookup(texts)
                self._mostly_new = len(left) * 2 > len(texts)
                raced = insert(left) if left else []
                if raced:
                    lookup(raced)
        return found

    # --- rows ----------------------------------------------------------------------------

    def insert_dirs(self, rows: Sequence[tuple[int, int, int, int]]) -> None:
        self._insert("index_dirs", DIR_COLUMNS, rows)

    def insert_versions(
        self, volume_id: int, first_seq: int, rows: Sequence[tuple[Any, ...]], plain: bool
    ) -> None:
        """New live versions of one volume, beginning in ``first_seq``: rows of
        :data:`PLAIN_VERSION_COLUMNS` when ``plain``, else of :data:`NEW_VERSION_COLUMNS`."""
        columns = PLAIN_VERSION_COLUMNS if plain else NEW_VERSION_COLUMNS
        fixed = {"volume_id": volume_id, "first_seq": first_seq}
        self._insert("index_versions", columns, rows, fixed)

    def _insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        fixed: dict[str, int] | None = None,
    ) -> None:
        """``rows`` of ``columns`` into ``table``, with the ``fixed`` columns' values the
        same in every row: SQLite by ``executemany``, those values in the statement (ints:
        nothing to escape); PostgreSQL by COPY, those values before each row's."""
        if not rows:
            return
        fixed = fixed or {}
        names = ", ".join((*fixed, *columns))
        if self.dialect == "postgresql":
            head = tuple(fixed.values())
            with self.raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((*head, *row))
            return
        marks = ", ".join([*(str(int(v)) for v in fixed.values()), *("?" * len(columns))])
        self.raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def close_versions(
        self, volume_id: int, keys: Sequence[tuple[int, int]], last_seq: int
    ) -> None:
        """End the live versions at ``keys`` (parent dir, name id): last seen in ``last_seq``."""
        if not keys:
            return
        if self.dialect == "postgresql":
            with self.raw.cursor() as cur:
                for i in range(0, len(keys), CLOSE_CHUNK):
                    chunk = keys[i : i + CLOSE_CHUNK]
                    cur.execute(
                        "UPDATE index_versions v SET last_seq = %s FROM unnest(%s::bigint[], "
                        "%s::bigint[]) AS k(parent_no, name_id) WHERE v.volume_id = %s "
                        "AND v.parent_no = k.parent_no AND v.name_id = k.name_id "
                        "AND v.last_seq IS NULL",
                        (last_seq, [k[0] for k in chunk], [k[1] for k in chunk], volume_id),
                    )
            return
        self.raw.executemany(
            "UPDATE index_versions SET last_seq = ? WHERE volume_id = ? AND parent_no = ? "
            "AND name_id = ? AND last_seq IS NULL",
            [(last_seq, volume_id, p, n) for p, n in keys],
        )

    def indexed_by(self, index: str) -> str:
        """SQLite's ``INDEXED BY`` clause for ``index`` (nothing on PostgreSQL, whose planner
        has statistics): without statistics SQLite prefers the primary key's volume prefix
        to a partial index, and reads a whole volume instead of a few rows."""
        return f" INDEXED BY {index}" if self.dialect == "sqlite" else ""

    def query(
        self, sql: str, params: Sequence[Any] = (), *, custom_plan: bool = False
    ) -> list[tuple[Any, ...]]:
        """Rows of a read on the same connection; ``?`` placeholders on both databases.
        ``custom_plan``: PostgreSQL plans this statement for its values every time (never
        prepared: a generic plan of a pattern match cannot tell a rare pattern from a common
        one, and walked every name in id order instead of the trigram index)."""
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
            with self.raw.cursor() as cur:
                cur.execute(sql, params, prepare=False if custom_plan else None)
                return list(cur.fetchall())
        return list(self.raw.execute(sql, params).fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A write on the same connection; ``?`` placeholders on both databases."""
        if self.dialect == "postgresql":
            with self.raw.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params)
            return
        self.raw.execute(sql, params)
