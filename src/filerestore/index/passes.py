"""One index pass: every filesystem of one backup into the index.

The backup is placed in its line (lines.py); then each volume holding a filesystem is
written by one of three methods:

- ``full``: the first backup of a line (or a volume new in it): every entry is new;
- ``changed-blocks``: an incremental on an ext or NTFS filesystem: only the inodes (MFT
  records) whose bytes lie in the clusters the overlay holds are read again (changed.py);
- ``walk-diff``: any other incremental: the whole tree walked and compared (walks.py).

A volume of the previous backup that is gone, or whose filesystem cannot be read now, has its
live versions ended (browsing it in this backup fails too); why is kept in the backup's
``notes``. A pass that fails is undone (lines.abandon_pass); a pass killed outright is
undone by the next attempt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from filerestore.blockio import CachedReader
from filerestore.catalog import locate_backup
from filerestore.db.engine import Database
from filerestore.db.models_index import IndexBackup, IndexVersion, IndexVolume
from filerestore.errors import BackupNotFoundError, FileRestoreError
from filerestore.fs import Filesystem, detect_filesystem, open_filesystem
from filerestore.image import DiskImage
from filerestore.index.batch import BatchWriter, PassStopped, ProgressHook
from filerestore.index.changed import changed_blocks_pass
from filerestore.index.lines import Placement, abandon_pass, place, volume_row
from filerestore.index.opening import BackupOpener, StoreOpener
from filerestore.index.store import refresh_statistics
from filerestore.index.volume_writer import VolumeWriter, content_hasher
from filerestore.index.walks import diff_walk, full_walk
from filerestore.settings import Settings
from filerestore.volume import Volume, list_volumes


@dataclass(frozen=True)
class PassReport:
    backup_id: int
    line_id: int
    seq: int
    methods: dict[str, str]  # volume id -> full, walk-diff, changed-blocks
    entries: int
    rows_added: int
    rows_closed: int
    notes: str | None
    already_indexed: bool = False


def index_backup(
    db: Database,
    settings: Settings,
    backup_id: int,
    progress: ProgressHook | None = None,
    *,
    method: str | None = None,
    opener: BackupOpener | None = None,
) -> PassReport:
    """Index one backup (see the module docstring). ``progress`` is called after every
    batch with the entries seen so far; whatever it raises stops the pass (undone).
    ``method="walk-diff"`` forces the comparing walk on an incremental (for benchmarks and
    tests of it). ``opener`` opens the backup (default: through the process's stores,
    holding no session slot; see filerestore.index.opening). Raises ParentNotIndexed when
    the parent backup must be indexed first, whatever ``progress`` raises (PassStopped),
    and whatever the opener refuses the open with (SessionLimitError, MetadataBudgetError,
    ...)."""
    opener = opener if opener is not None else StoreOpener(db, settings)
    info = locate_backup(db, backup_id, opener.stores)
    placement = place(db, backup_id)
    if placement.complete:
        return PassReport(backup_id, placement.line_id, placement.seq, {}, 0, 0, 0, None, True)
    writer = BatchWriter(db, progress)
    try:
        with opener.open(info) as disk:
            methods, notes = _index_volumes(db, settings, disk, placement, writer, method)
        writer.commit()
        _finish(db, placement, writer, methods, notes)
    except BaseException as exc:
        writer.abort(exc)
        if not isinstance(exc, PassStopped) or exc.undo:
            with contextlib.suppress(FileRestoreError):
                abandon_pass(db, placement)
        raise
    refresh_statistics(db, writer.rows_added)  # after the pass: its failure undoes nothing
    return PassReport(
        backup_id,
        placement.line_id,
        placement.seq,
        methods,
        writer.entries,
        writer.rows_added,
        writer.rows_closed,
        notes,
    )


def _index_volumes(
    db: Database,
    settings: Settings,
    disk: DiskImage,
    placement: Placement,
    writer: BatchWriter,
    forced: str | None,
) -> tuple[dict[str, str], str | None]:
    methods: dict[str, str] = {}
    notes: list[str] = []
    seen: set[str] = set()
    for volume in list_volumes(disk):
        if volume.is_container:
            continue
        try:
            with _opened(volume) as fs:
                if fs is None:
                    continue
                seen.add(volume.id)
                methods[volume.id] = _index_volume(
                    db, settings, disk, volume, fs, placement, writer, forced
                )
        except FileRestoreError as exc:
            if isinstance(exc, BackupNotFoundError):
                raise
            # the volume's open batch is rolled back: left open, it would hold the write
            # lock (SQLite) that the next volume's and the pass's own writes wait for
            writer.abort(exc)
            notes.append(f"{volume.id}: {exc}")
    if placement.previous_backup_id is not None:
        _end_missing_volumes(db, placement, seen, writer)
    return methods, "\n".join(notes) or None


@contextlib.contextmanager
def _opened(volume: Volume) -> Iterator[Filesystem[Any] | None]:
    if volume.error:
        raise FileRestoreError(volume.error)
    if detect_filesystem(volume.reader) is None:
        yield None
        return
    fs = open_filesystem(CachedReader(volume.reader))
    try:
        yield fs
    finally:
        fs.close()


def _index_volume(
    db: Database,
    settings: Settings,
    disk: DiskImage,
    volume: Volume,
    fs: Filesystem[Any],
    placement: Placement,
    writer: BatchWriter,
    forced: str | None,
) -> str:
    with db.write() as s:
        _fence(writer, s)
        row = volume_row(s, placement.line_id, volume.id, fs.kind)
        volume_id, next_dir_no = row.id, row.next_dir_no
        has_live = placement.previous_backup_id is not None and (
            s.scalar(
                select(IndexVersion.name_id)
                .where(IndexVersion.volume_id == volume_id, IndexVersion.last_seq.is_(None))
                .limit(1)
            )
            is not None
        )
    hasher = content_hasher(fs, settings.index_hash_max_size)
    vw = VolumeWriter(writer, volume_id, placement.seq, next_dir_no, hasher)
    if not has_live:
        full_walk(fs, vw)
        method = "full"
    elif forced != "walk-diff" and changed_blocks_pass(disk, volume, fs, vw):
        method = "changed-blocks"
    else:
        diff_walk(fs, vw)
        method = "walk-diff"
    writer.commit()
    with db.write() as s:
        _fence(writer, s)
        s.execute(
            update(IndexVolume)
            .where(IndexVolume.id == volume_id)
            .values(next_dir_no=vw.next_dir_no)
        )
    return method


def _end_missing_volumes(
    db: Database, placement: Placement, seen: set[str], writer: BatchWriter
) -> None:
    """End the live versions of the line's volumes that this backup does not hold (or could
    not read)."""
    with db.write() as s:
        _fence(writer, s)
        gone = s.scalars(
            select(IndexVolume.id).where(
                IndexVolume.line_id == placement.line_id, IndexVolume.volume.not_in(seen)
            )
        ).all()
        for volume_id in gone:
            s.execute(
                update(IndexVersion)
                .where(IndexVersion.volume_id == volume_id, IndexVersion.last_seq.is_(None))
                .values(last_seq=placement.seq - 1)
            )


def _finish(
    db: Database,
    placement: Placement,
    writer: BatchWriter,
    methods: dict[str, str],
    notes: str | None,
) -> None:
    with db.write() as s:
        _fence(writer, s)
        row = s.get(IndexBackup, placement.backup_id)
        if row is None:  # removed from the catalog while it was indexed
            raise BackupNotFoundError(
                f"backup {placement.backup_id} was removed while it was being indexed"
            )
        row.complete = True
        row.finished_at = datetime.now(UTC)
        row.method = ",".join(sorted(set(methods.values()))) or None
        row.entries = writer.entries
        row.rows_added = writer.rows_added
        row.rows_closed = writer.rows_closed
        row.notes = notes


def _fence(writer: BatchWriter, session: Session) -> None:
    """Every write of a pass checks, in its transaction, that the pass may go on."""
    if writer.progress is not None:
        writer.progress(session, writer.entries)
