"""The history of one path on one disk: every version across the disk's backups.

The disk is named by any of its backups (its line: the full backup and the incrementals on
it). Events are read off the visible backups in order: the path ``appeared`` in the first
that holds it (again after a gap), ``changed`` where a backup holds another version than the
one before, ``vanished`` in the first backup after one that held it that does not.
"""

from __future__ import annotations

from collections.abc import Collection

from filerestore.db.engine import Database
from filerestore.errors import BackupNotFoundError, UsageError
from filerestore.index.paths import entry_key
from filerestore.index.records import HistoryEvent, PathHistory, Version
from filerestore.index.store import IndexStore
from filerestore.index.visible import VERSION_COLUMNS, BackupFilter, version_of, visible_lines


def volume_of(store: IndexStore, line_id: int, volume: str | None) -> tuple[int, str]:
    """(volume id, name) of the line's ``volume``; None: the line's only one."""
    rows = store.query(
        "SELECT id, volume FROM index_volumes WHERE line_id = ? ORDER BY volume", (line_id,)
    )
    if volume is not None:
        rows = [r for r in rows if r[1] == volume]
    if len(rows) != 1:
        there = ", ".join(r[1] for r in rows) or "none"
        what = f"no indexed volume {volume!r}" if volume else "several indexed volumes"
        raise UsageError(f"{what} on this disk (volumes: {there}); name one")
    return int(rows[0][0]), str(rows[0][1])


def line_of(store: IndexStore, backup_id: int) -> int:
    rows = store.query("SELECT line_id FROM index_backups WHERE backup_id = ?", (backup_id,))
    if not rows:
        raise BackupNotFoundError(f"backup {backup_id} is not indexed")
    return int(rows[0][0])


def path_history(
    db: Database,
    backup_id: int,
    path: str,
    allowed: Collection[int],
    volume: str | None = None,
) -> PathHistory:
    """Every version of ``path`` on the disk of ``backup_id`` (see the module docstring)."""
    if backup_id not in allowed:
        raise BackupNotFoundError(f"no backup with id {backup_id}")
    with db.read() as session:
        store = IndexStore(session)
        line_id = line_of(store, backup_id)
        volume_id, volume_name = volume_of(store, line_id, volume)
        line = visible_lines(store, BackupFilter(allowed)).get(line_id)
        key = entry_key(store, volume_id, path)
        if line is None or key is None:
            return PathHistory(volume_name, path, (), (), None)
        rows = store.query(
            f"SELECT {VERSION_COLUMNS} FROM index_versions v WHERE v.volume_id = ? "
            "AND v.parent_no = ? AND v.name_id = ? ORDER BY v.first_seq",
            (volume_id, *key),
        )
    versions: list[Version] = []
    spans: list[tuple[int, int | None]] = []
    for row in rows:
        held = line.holding(row[0], row[1])
        if held:
            versions.append(version_of(row, held))
            spans.append((row[0], row[1]))
    events: list[HistoryEvent] = []
    last_seen = None
    current: int | None = None
    for seq, ref in zip(line.seqs, line.refs, strict=True):
        holder = next(
            (i for i, (a, b) in enumerate(spans) if a <= seq and (b is None or seq <= b)), None
        )
        if holder is not None:
            last_seen = ref
            if current is None:
                events.append(HistoryEvent("appeared", ref))
            elif holder != current:
                events.append(HistoryEvent("changed", ref))
        elif current is not None:
            events.append(HistoryEvent("vanished", ref))
        current = holder
    return PathHistory(volume_name, path, tuple(versions), tuple(events), last_seen)
