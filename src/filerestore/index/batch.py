"""Writes of an index pass, gathered into batches of one transaction each.

A pass may write a million rows; one transaction for all of them would hold SQLite's only
write lock for many seconds (every session write would wait, then fail). So rows are
buffered and written a batch at a time, each batch in its own transaction, in which the pass
also reports its progress and checks that it may go on (not cancelled, its lease not lost,
its backup still there): a runner whose job was taken over commits nothing more. A pass
that stops half way leaves rows that :func:`filerestore.index.lines.undo_pass` removes
before the pass runs again, so batches need no idempotence of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.orm import Session

from filerestore.db.engine import Database
from filerestore.index.store import IndexStore

BATCH_ROWS = 20_000  # rows (directories + versions + ends) per transaction
BATCH_SECONDS = 1.0  # or this long since the batch began, whichever first
SQLITE_CACHE_KIB = 128 * 1024  # page cache of the connection a pass writes on

#: called in every write transaction of a pass, just before it commits, with the entries
#: seen so far: it records progress and fences the pass (raises PassStopped to stop it, and
#: the transaction's writes are rolled back with it)
ProgressHook = Callable[[Session, int], None]


class PassStopped(Exception):
    """Raised by a ProgressHook to stop a pass. ``undo``: remove what the pass wrote (it is
    cancelled, or its backup is gone); without it the pass is another runner's now."""

    undo = True


class BatchWriter:
    """Buffers directories, versions and ends; writes them a transaction at a time."""

    def __init__(self, db: Database, progress: ProgressHook | None = None) -> None:
        self.db = db
        self.progress = progress
        self.entries = 0  # entries examined (the progress figure)
        self.rows_added = 0
        self.rows_closed = 0
        self._dirs: list[tuple[int, int, int, int]] = []
        #: new versions by (volume id, first_seq, plain): see IndexStore.insert_versions
        self._versions: dict[tuple[int, int, bool], list[tuple[Any, ...]]] = {}
        self._closes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self._pending = 0
        self._started = time.monotonic()
        self._tx: AbstractContextManager[Session] | None = None
        self._store: IndexStore | None = None

    @property
    def store(self) -> IndexStore:
        """The store on the current batch's transaction (one is begun if none is open)."""
        if self._store is None or self._tx is None:
            self._tx = self.db.write()
            session = self._tx.__enter__()
            if self._store is None:
                self._store = IndexStore(session)
            else:
                self._store.rebind(session)
            if self._store.dialect == "sqlite":
                # the pass inserts into indexes (names, versions) all over the file: with
                # SQLite's default 2 MiB page cache each batch reread most of them
                self._store.raw.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            self._started = time.monotonic()
        return self._store

    def add_dir(self, row: tuple[int, int, int, int]) -> None:
        self._dirs.append(row)
        self._pending += 1

    def add_version(self, key: tuple[int, int, bool], row: tuple[Any, ...]) -> None:
        """A new version of a volume (``key``: its id, the version's first_seq, and whether
        the row is plain: see IndexStore.insert_versions)."""
        found = self._versions.get(key)
        if found is None:
            self._versions[key] = [row]
        else:
            found.append(row)
        self._pending += 1

    def close(self, volume_id: int, key: tuple[int, int], last_seq: int) -> None:
        self._closes.setdefault((volume_id, last_seq), []).append(key)
        self._pending += 1

    def maybe_commit(self) -> None:
        """Write and commit the batch when it is large or old enough."""
        if self._pending >= BATCH_ROWS or (
            self._pending and time.monotonic() - self._started >= BATCH_SECONDS
        ):
            self.commit()

    def commit(self) -> None:
        store = self.store
        for (volume_id, last_seq), keys in self._closes.items():
            store.close_versions(volume_id, keys, last_seq)
            self.rows_closed += len(keys)
        store.insert_dirs(self._dirs)
        for (volume_id, first_seq, plain), rows in self._versions.items():
            store.insert_versions(volume_id, first_seq, rows, plain)
            self.rows_added += len(rows)
        self._dirs, self._versions, self._closes, self._pending = [], {}, {}, 0
        if self.progress is not None:
            self.progress(store.session, self.entries)
        self._end(None)

    def fence(self) -> None:
        """Run the progress hook in a transaction of its own (for a pass's other writes)."""
        if self.progress is not None:
            with self.db.write() as session:
                self.progress(session, self.entries)

    def abort(self, exc: BaseException | None = None) -> None:
        """Roll back the open batch (its rows were never committed)."""
        self._dirs, self._versions, self._closes, self._pending = [], {}, {}, 0
        self._end(exc or RuntimeError("index pass aborted"))

    def _end(self, exc: BaseException | None) -> None:
        tx, self._tx = self._tx, None
        if tx is not None:
            if exc is None:
                tx.__exit__(None, None, None)
            else:
                tx.__exit__(type(exc), exc, exc.__traceback__)
