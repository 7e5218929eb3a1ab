"""The two halves of a full index pass measured apart (bench/index.py prints them): how long
our walk of the filesystem takes with nothing written, and how long the catalog takes to
store the pass's rows with nothing parsed. Their sum is a floor under the full pass (the
pass also builds each row in Python between the two); either half alone against the peer
says which side a target is out of reach on.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filerestore.blockio import CachedReader
from filerestore.db.engine import Database
from filerestore.fs import open_filesystem
from filerestore.image import open_image
from filerestore.index.batch import BATCH_ROWS, SQLITE_CACHE_KIB
from filerestore.index.store import (
    DIR_COLUMNS,
    NEW_VERSION_COLUMNS,
    PLAIN_VERSION_COLUMNS,
    IndexStore,
)
from filerestore.volume import list_volumes


def walk_alone(image: Path, repeat: int) -> float:
    """Best of ``repeat``: open ``image`` and take every directory's entries from the bulk
    walk the full pass takes (``iter_all``), writing nothing."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        disk = open_image(str(image))
        try:
            (volume,) = [v for v in list_volumes(disk) if not v.is_container]
            fs = open_filesystem(CachedReader(volume.reader))
            entries = sum(len(listed) for _, listed in fs.iter_all())
            fs.close()
        finally:
            disk.close()
        best = min(best, time.perf_counter() - start)
    if not entries:
        raise SystemExit(f"walk of {image} found no entries")
    return best


Rows = dict[Any, list[tuple[Any, ...]]]


def rows_of(db: Database) -> Rows:
    """The rows an index holds (after one full pass: that pass's rows); its versions under
    the keys the pass wrote them by, (volume id, first_seq, plain): see
    IndexStore.insert_versions."""
    with db.read() as s:
        raw = s.connection()
        out: Rows = {
            # the parents of its rows, written outside the timing (the catalog's repository
            # comes first: the same in every catalog bench/index.py makes)
            "index_lines": list(raw.exec_driver_sql("SELECT * FROM index_lines")),
            "index_volumes": list(raw.exec_driver_sql("SELECT * FROM index_volumes")),
            "names": list(raw.exec_driver_sql("SELECT id, name FROM index_names ORDER BY id")),
            "dirs": list(raw.exec_driver_sql(f"SELECT {', '.join(DIR_COLUMNS)} FROM index_dirs")),
        }
        columns = ", ".join(NEW_VERSION_COLUMNS)
        for volume_id, first_seq, *row in raw.exec_driver_sql(
            f"SELECT volume_id, first_seq, {columns} FROM index_versions"
        ):
            plain = len(PLAIN_VERSION_COLUMNS)
            short = all(v is None for v in row[plain:])  # no target, data location, hash
            out.setdefault((volume_id, first_seq, short), []).append(
                tuple(row[:plain] if short else row)
            )
    return out


def writes_alone(rows: Rows, new_catalog: Callable[[Path], Database], repeat: int) -> float:
    """Best of ``repeat``: store ``rows`` in a catalog made by ``new_catalog`` (in a
    directory of its own) the way a pass does (the same statements, page cache and
    transactions of :data:`BATCH_ROWS` rows), with nothing parsed or looked up."""
    best = float("inf")
    for _ in range(repeat):
        tmp = Path(tempfile.mkdtemp(prefix="bench-floor-"))
        try:
            db = new_catalog(tmp)
            with db.write() as session:
                for table in ("index_lines", "index_volumes"):
                    for row in rows[table]:
                        marks = ", ".join("?" * len(row))
                        session.connection().exec_driver_sql(
                            f"INSERT INTO {table} VALUES ({marks})", tuple(row)
                        )
            start = time.perf_counter()
            for kind in ("names", "dirs", *(k for k in rows if isinstance(k, tuple))):
                todo = rows[kind]
                for i in range(0, len(todo), BATCH_ROWS):
                    with db.write() as session:
                        store = IndexStore(session)
                        store.raw.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                        chunk = todo[i : i + BATCH_ROWS]
                        if kind == "names":
                            store.insert_sqlite_names(chunk)
                        elif kind == "dirs":
                            store.insert_dirs(chunk)
                        else:
                            volume_id, first_seq, plain = kind
                            store.insert_versions(volume_id, first_seq, chunk, plain)
            best = min(best, time.perf_counter() - start)
            db.dispose()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return best
