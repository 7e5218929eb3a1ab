"""The block cache on disk, shared by every worker process of a host and kept across restarts.

Layout of the cache directory (it must be on a local filesystem: SQLite's locking is not
reliable over NFS)::

    index.sqlite3            blocks (name, size, last use), the total, remembered objects
    blocks/ab/<name>         one file per cached block, written whole then renamed

Why files plus a SQLite index, not files plus fcntl locks: the two things several processes
must agree on are the total size (to keep the cap) and the order of last use (to evict the
least recently used first). SQLite gives both as one transaction over an indexed table
(WAL mode: readers never wait, a writer waits at most ``busy_timeout``); with bare files
each eviction would scan the directory and race with the other processes' scans. The bytes
themselves stay in plain files: a reader opens, reads and closes one without any lock,
because a block file is only ever created by ``rename`` (never seen half-written) and its
name holds the object's ETag (never rewritten with other bytes).

A block's name is a hash of (endpoint, bucket, key, ETag, size, block size) and its index,
so a replaced object (a new ETag) never finds the old object's blocks: they are simply not
used again and age out. Races end safely: two processes fetching one block both rename a
file with the same bytes; an eviction that deletes a block another process is reading
leaves that reader's open descriptor valid; a block row whose file is gone is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("filerestore.source")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (name TEXT PRIMARY KEY, size INTEGER NOT NULL,
                                   used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_by_use ON blocks (used);
CREATE TABLE IF NOT EXISTS total (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO total VALUES (0, 0);
CREATE TABLE IF NOT EXISTS objects (location TEXT PRIMARY KEY, etag TEXT NOT NULL,
                                    size INTEGER NOT NULL, modified REAL NOT NULL,
                                    seen REAL NOT NULL);
"""
#: an eviction frees down to this share of the cap, so the next inserts do not each evict
LOW_WATER = 0.9
#: uses of cached blocks are written to the index in batches (one transaction each), not
#: one write per hit: a warm open hits dozens of blocks
TOUCH_BATCH = 64
TOUCH_SECONDS = 5.0


#: a block's bytes: ``bytes`` read from the disk cache, or a read-only view of the buffer
#: the S3 client received (kept without a copy)
Block = bytes | memoryview


class Remembered(NamedTuple):
    """An object as an open last saw it: its version, and when the server last confirmed it
    (seconds since the epoch)."""

    etag: str
    size: int
    modified: float
    seen: float


def object_id(*parts: str | int) -> str:
    """A stable name for one version of one object (its parts joined, hashed)."""
    return hashlib.sha256(
        "\0".join(map(str, parts)).encode("utf-8", "surrogateescape")
    ).hexdigest()[:40]


class BlockCache:
    """Blocks of objects on disk under ``directory``, at most ``capacity`` bytes in all.

    Thread-safe; safe across processes sharing the directory. I/O errors of the cache
    (a full disk) are logged and make a miss: the cache only ever saves requests.
    """

    def __init__(self, directory: str | os.PathLike[str], capacity: int) -> None:
        self.directory = Path(directory)
        self.capacity = capacity
        self._blocks = self.directory / "blocks"
        self._blocks.mkdir(parents=True, exist_ok=True)
        # the connection's lock; the uses of blocks have their own, so a read of a block
        # never waits for the index (another process's transaction may hold it)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = -1
        self._touch_lock = threading.Lock()
        self._touched: dict[str, float] = {}
        self._flushed = time.monotonic()
        with self._lock:
            db = self._connection()
            db.executescript(_SCHEMA)

    # --- blocks ------------------------------------------------------------------------------

    def get(self, name: str, size: int) -> bytes | None:
        """Block ``name`` if cached with exactly ``size`` bytes, else None."""
        try:
            with self._path(name).open("rb") as fh:
                data = fh.read(size + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("block cache: cannot read %s: %s", name, exc)
            return None
        if len(data) != size:
            return None
        with self._touch_lock:
            self._touched[name] = time.time()
            due = (
                len(self._touched) >= TOUCH_BATCH
                or time.monotonic() - self._flushed > TOUCH_SECONDS
            )
        # written by whoever finds the writer free: a reader never waits for it (a busy
        # writer flushes them with its next blocks, or close does)
        if due and self._lock.acquire(blocking=False):
            try:
                self._flush_touches()
            finally:
                self._lock.release()
        return data

    def put(self, name: str, data: Block) -> None:
        self.put_many([(name, data)])

    def put_many(self, blocks: list[tuple[str, Block]]) -> None:
        """Write ``blocks`` (name, bytes), then index them in one transaction."""
        written = [(name, len(data)) for name, data in blocks if self._write_file(name, data)]
        if not written:
            return
        with self._lock:
            try:
                db = self._connection()
                with db:
                    db.execute("BEGIN IMMEDIATE")  # the rows and the total change together
                    now = time.time()
                    added = 0
                    for name, size in written:
                        if db.execute(
                            "INSERT OR IGNORE INTO blocks VALUES (?, ?, ?)", (name, size, now)
                        ).rowcount:
                            added += size
                    if added:
                        db.execute("UPDATE total SET bytes = bytes + ?", (added,))
                    total = db.execute("SELECT bytes FROM total").fetchone()[0]
                if total > self.capacity:
                    self._flush_touches()  # the order of use must be current to evict by it
                    self._evict(db)
            except sqlite3.Error as exc:
                log.warning("block cache: index update failed: %s", exc)

    def _write_file(self, name: str, data: Block) -> bool:
        """Block ``name``'s file, written whole then renamed; False if it could not be."""
        if len(data) > self.capacity:
            return False
        path = self._path(name)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
        try:
            path.parent.mkdir(exist_ok=True)
            with tmp.open("wb") as fh:
                fh.write(data)
            tmp.replace(path)
        except OSError as exc:
            log.warning("block cache: cannot write %s: %s", name, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        return True

    def total(self) -> int:
        """Bytes the index counts (what the cap is kept on)."""
        with self._lock:
            return int(self._connection().execute("SELECT bytes FROM total").fetchone()[0])

    def _flush_touches(self) -> None:
        """Write the batched uses of blocks (call under the lock)."""
        with self._touch_lock:
            touched, self._touched = self._touched, {}
            self._flushed = time.monotonic()
        if not touched:
            return
        try:
            db = self._connection()
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    "UPDATE blocks SET used = ? WHERE name = ?",
                    [(used, name) for name, used in touched.items()],
                )
        except sqlite3.Error as exc:
            log.warning("block cache: index update failed: %s", exc)

    def _evict(self, db: sqlite3.Connection) -> None:
        """Delete least recently used blocks until the total is under the low-water mark."""
        target = int(self.capacity * LOW_WATER)
        with db:
            db.execute("BEGIN IMMEDIATE")  # one evictor at a time, over all processes
            total = db.execute("SELECT bytes FROM total").fetchone()[0]
            victims: list[tuple[str, int]] = []
            for name, size in db.execute("SELECT name, size FROM blocks ORDER BY used"):
                if total <= target:
                    break
                victims.append((name, size))
                total -= size
            db.executemany("DELETE FROM blocks WHERE name = ?", [(n,) for n, _ in victims])
            db.execute("UPDATE total SET bytes = ?", (total,))
            # unlinked inside the transaction: no other process inserts a row for a victim
            # between its deletion and its unlink
            for name, _ in victims:
                with contextlib.suppress(FileNotFoundError):
                    self._path(name).unlink()

    # --- what objects were last seen as (warm opens start from it) ----------------------------

    def remembered(self, location: str) -> Remembered | None:
        """What ``location`` was when last opened or confirmed, or None."""
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT etag, size, modified, seen FROM objects WHERE location = ?",
                    (location,),
                )
                .fetchall()
            )
        if not rows:
            return None
        row = rows[0]
        return Remembered(str(row[0]), int(row[1]), float(row[2]), float(row[3]))

    def remember(self, location: str, etag: str, size: int, modified: float) -> None:
        self._write(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
            (location, etag, size, modified, time.time()),
        )

    def forget(self, location: str) -> None:
        self._write("DELETE FROM objects WHERE location = ?", (location,))

    # --- plumbing ----------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self._blocks / name[:2] / name

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        with self._lock:
            try:
                self._connection().execute(sql, args)  # one statement: its own transaction
            except sqlite3.Error as exc:
                log.warning("block cache: index update failed: %s", exc)

    def _connection(self) -> sqlite3.Connection:
        """This process's connection (a forked worker opens its own); call under the lock."""
        if self._db is None or self._pid != os.getpid():
            self._db, self._pid = self._connect(), os.getpid()
        return self._db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.directory / "index.sqlite3",
            timeout=30.0,
            isolation_level=None,  # transactions are explicit: ``with db`` / BEGIN
            check_same_thread=False,  # used under its lock only
        )
        # fetched to the end: a statement left open holds a read transaction (an old snapshot)
        db.execute("PRAGMA journal_mode=WAL").fetchall()
        db.execute("PRAGMA synchronous=NORMAL")  # a crash may lose the last uses, no more
        return db

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._flush_touches()
                self._db.close()
            self._db = None
