"""Backups in the catalog: register one by path, list, look up, locate its image file.

A backup's kind and parent come from its backing chain, read by the image layer with the
same rules as when it is opened (backing names inside the repository root, depth limit), so
a chain the reader would refuse is never registered. A backup whose file has vanished stays
in the catalog and is reported ``missing``; mounting it gives BackupFileMissingError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from filerestore.catalog.repositories import (
    RepositoryInfo,
    check_availability,
    get_repository,
    require_available,
)
from filerestore.db.engine import Database
from filerestore.db.models import Backup, Repository
from filerestore.errors import BackupFileMissingError, BackupNotFoundError, UsageError
from filerestore.image import DEFAULT_MAX_CHAIN_DEPTH, ChainLink, probe_chain


@dataclass(frozen=True)
class BackupInfo:
    id: int
    repository: str
    path: str
    vm_name: str | None
    disk_name: str | None
    kind: str
    parent_backup_id: int | None
    virtual_size: int
    created_at: datetime
    registered_at: datetime
    #: available, missing (file gone), unavailable (repository share not mounted)
    status: str
    image_path: str
    repository_root: str


@dataclass(frozen=True)
class Probed:
    """What registering needs from one image file, read before any transaction starts."""

    path: str  # relative to the repository root
    chain: list[ChainLink]
    mtime: datetime

    @property
    def kind(self) -> str:
        return "incremental" if len(self.chain) > 1 else "full"


def relative_path(root: Path, path: str | os.PathLike[str]) -> str:
    """``path`` (absolute, or relative to ``root``) as a clean path relative to ``root``."""
    full = Path(os.path.normpath(root / path))
    try:
        rel = full.relative_to(root)
    except ValueError:
        raise UsageError(f"{path} is outside the repository root {root}") from None
    if not rel.parts:
        raise UsageError(f"{path} is the repository root, not an image")
    return rel.as_posix()


def probe(root: Path, rel: str, max_chain_depth: int) -> Probed:
    image = root / rel
    chain = probe_chain(image, repository=root, max_chain_depth=max_chain_depth)
    mtime = datetime.fromtimestamp(image.stat().st_mtime, UTC)
    return Probed(rel, chain, mtime)


def upsert(
    session: Session,
    repo_id: int,
    root: Path,
    probed: Probed,
    vm_name: str | None = None,
    disk_name: str | None = None,
) -> tuple[Backup, bool]:
    """Insert or update the backup row for ``probed``; True when it was inserted."""
    parent_id = None
    if len(probed.chain) > 1:
        parent_rel = probed.chain[1].name  # its path in the repository, links resolved
        parent_id = session.scalar(
            select(Backup.id).where(Backup.repository_id == repo_id, Backup.path == parent_rel)
        )
    row = session.scalar(
        select(Backup).where(Backup.repository_id == repo_id, Backup.path == probed.path)
    )
    inserted = row is None
    if row is None:
        parts = Path(probed.path).parts
        row = Backup(
            repository_id=repo_id,
            path=probed.path,
            vm_name=vm_name if vm_name is not None else (parts[-2] if len(parts) > 1 else None),
            disk_name=disk_name if disk_name is not None else Path(parts[-1]).stem,
        )
        session.add(row)
    else:
        row.vm_name = vm_name if vm_name is not None else row.vm_name
        row.disk_name = disk_name if disk_name is not None else row.disk_name
    row.kind = probed.kind
    row.parent_backup_id = parent_id
    row.virtual_size = probed.chain[0].virtual_size
    row.created_at = probed.mtime
    session.flush()
    return row, inserted


def register_backup(
    db: Database,
    repository: str,
    path: str | os.PathLike[str],
    *,
    vm_name: str | None = None,
    disk_name: str | None = None,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
) -> BackupInfo:
    """Register (or refresh) one image of ``repository``; ``path`` absolute or relative."""
    repo = get_repository(db, repository)
    require_available(repo)
    root = Path(repo.root_path)
    rel = relative_path(root, path)
    probed = probe(root, rel, max_chain_depth)
    with db.write(lock=f"catalog:{repo.id}") as session:
        row, _ = upsert(session, repo.id, root, probed, vm_name, disk_name)
        backup_id = row.id
    return get_backup(db, backup_id)


def list_backups(db: Database, repository: str | None = None) -> list[BackupInfo]:
    query = select(Backup, Repository).join(Repository).order_by(Backup.id)
    if repository is not None:
        query = query.where(Repository.name == repository)
    with db.read() as session:
        rows = session.execute(query).all()
        pairs = [(b, RepositoryInfo.of(r)) for b, r in rows]
    availability: dict[int, bool] = {}
    out = []
    for backup, repo in pairs:
        if repo.id not in availability:
            availability[repo.id] = check_availability(repo.kind, repo.root_path).available
        out.append(_info(backup, repo, availability[repo.id]))
    return out


def get_backup(db: Database, backup_id: int) -> BackupInfo:
    with db.read() as session:
        pair = session.execute(
            select(Backup, Repository).join(Repository).where(Backup.id == backup_id)
        ).first()
        if pair is None:
            raise BackupNotFoundError(f"no backup with id {backup_id}")
        backup, repo = pair[0], RepositoryInfo.of(pair[1])
    return _info(backup, repo, check_availability(repo.kind, repo.root_path).available)


def locate_backup(db: Database, backup_id: int) -> BackupInfo:
    """The backup, checked readable: its repository reachable and its image file present."""
    info = get_backup(db, backup_id)
    if info.status == "unavailable":
        require_available(get_repository(db, info.repository))
    if info.status == "missing":
        raise BackupFileMissingError(
            f"backup {backup_id}: image file is missing from repository "
            f"{info.repository!r}: {info.path}"
        )
    return info


def _info(backup: Backup, repo: RepositoryInfo, repo_available: bool) -> BackupInfo:
    image = Path(repo.root_path) / backup.path
    if not repo_available:
        status = "unavailable"
    elif image.is_file():
        status = "available"
    else:
        status = "missing"
    return BackupInfo(
        id=backup.id,
        repository=repo.name,
        path=backup.path,
        vm_name=backup.vm_name,
        disk_name=backup.disk_name,
        kind=backup.kind,
        parent_backup_id=backup.parent_backup_id,
        virtual_size=backup.virtual_size,
        created_at=backup.created_at,
        registered_at=backup.registered_at,
        status=status,
        image_path=str(image),
        repository_root=repo.root_path,
    )
