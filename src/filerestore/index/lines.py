"""A backup's place in the index: its line (one disk's chain) and its number in it.

A full backup starts a line at seq 1. An incremental continues its parent's line at the
parent's seq + 1, when the parent is indexed and is the line's head (the last backup given a
seq): the line's live versions are then exactly the parent's entries, and the incremental
writes only what differs. Otherwise (the parent is not indexed yet: the caller waits for it;
the parent already has an indexed child: a branch; the head was removed) the backup starts a
line of its own and is indexed in full.

A pass that stopped half way (a crash, a kill, a lost lease) left rows of its seq behind;
:func:`undo_pass` removes exactly those before the pass runs again: versions that began in
it, directories numbered after the volume's last completed pass, and the ends it wrote on the
versions of seq - 1 (only this pass can have ended a version at seq - 1, since seq - 1 was
the head until it began).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from filerestore.db.engine import Database
from filerestore.db.models import Backup
from filerestore.db.models_index import IndexBackup, IndexDir, IndexLine, IndexVersion, IndexVolume
from filerestore.errors import BackupNotFoundError

#: serialises placing backups in lines (PostgreSQL advisory lock; SQLite has one writer)
PLACE_LOCK = "filerestore.index.place"


class ParentNotIndexed(Exception):
    """The backup's parent must be indexed first (its id is ``parent_id``)."""

    def __init__(self, parent_id: int) -> None:
        super().__init__(f"waiting for the parent backup {parent_id} to be indexed")
        self.parent_id = parent_id


@dataclass(frozen=True)
class Placement:
    backup_id: int
    line_id: int
    seq: int
    #: the backup at seq - 1 (the line's head before this pass); None: first of its line
    previous_backup_id: int | None
    complete: bool = False
    resumed: bool = False


def place(db: Database, backup_id: int) -> Placement:
    """The backup's line and seq, given now if it has none (see the module docstring).

    Raises BackupNotFoundError, or ParentNotIndexed when the parent must go first.
    """
    with db.write(lock=PLACE_LOCK) as s:
        row = s.get(IndexBackup, backup_id)
        if row is not None:
            previous = _backup_at(s, row.line_id, row.seq - 1)
            if row.complete:
                return Placement(backup_id, row.line_id, row.seq, previous, complete=True)
            undo_pass(s, row.line_id, row.seq)
            row.started_at = datetime.now(UTC)
            return Placement(backup_id, row.line_id, row.seq, previous, resumed=True)
        backup = s.get(Backup, backup_id)
        if backup is None:
            raise BackupNotFoundError(f"no backup with id {backup_id}")
        parent_id = backup.parent_backup_id
        if parent_id is not None:
            parent = s.get(IndexBackup, parent_id)
            if parent is None or not parent.complete:
                raise ParentNotIndexed(parent_id)
            line = s.get(IndexLine, parent.line_id)
            if line is not None and line.head_seq == parent.seq:
                line.head_seq = parent.seq + 1
                s.add(IndexBackup(backup_id=backup_id, line_id=line.id, seq=line.head_seq))
                return Placement(backup_id, line.id, line.head_seq, parent_id)
        line = IndexLine(repository_id=backup.repository_id, head_seq=1)
        s.add(line)
        s.flush()
        s.add(IndexBackup(backup_id=backup_id, line_id=line.id, seq=1))
        return Placement(backup_id, line.id, 1, None)


def _backup_at(s: Session, line_id: int, seq: int) -> int | None:
    return s.scalar(
        select(IndexBackup.backup_id).where(IndexBackup.line_id == line_id, IndexBackup.seq == seq)
    )


def undo_pass(s: Session, line_id: int, seq: int) -> None:
    """Remove what an unfinished pass of ``seq`` wrote (see the module docstring)."""
    volumes = s.execute(
        select(IndexVolume.id, IndexVolume.next_dir_no).where(IndexVolume.line_id == line_id)
    ).all()
    for volume_id, next_dir_no in volumes:
        s.execute(
            delete(IndexVersion).where(
                IndexVersion.volume_id == volume_id, IndexVersion.first_seq == seq
            )
        )
        if seq > 1:
            s.execute(
                update(IndexVersion)
                .where(IndexVersion.volume_id == volume_id, IndexVersion.last_seq == seq - 1)
                .values(last_seq=None)
            )
        s.execute(
            delete(IndexDir).where(IndexDir.volume_id == volume_id, IndexDir.dir_no >= next_dir_no)
        )


def abandon_pass(db: Database, placement: Placement) -> None:
    """Undo an unfinished pass and give its seq back, so the line can go on from seq - 1."""
    with db.write(lock=PLACE_LOCK) as s:
        undo_pass(s, placement.line_id, placement.seq)
        s.execute(
            delete(IndexBackup).where(
                IndexBackup.backup_id == placement.backup_id, IndexBackup.complete.is_(False)
            )
        )
        line = s.get(IndexLine, placement.line_id)
        if line is not None and line.head_seq == placement.seq:
            line.head_seq = placement.seq - 1
            if line.head_seq == 0:
                s.delete(line)


def volume_row(s: Session, line_id: int, volume: str, fs_kind: str) -> IndexVolume:
    """The line's row for ``volume``, made on first use."""
    row = s.scalar(
        select(IndexVolume).where(IndexVolume.line_id == line_id, IndexVolume.volume == volume)
    )
    if row is None:
        row = IndexVolume(line_id=line_id, volume=volume, fs_kind=fs_kind, next_dir_no=1)
        s.add(row)
        s.flush()
    elif row.fs_kind != fs_kind:
        row.fs_kind = fs_kind
    return row
