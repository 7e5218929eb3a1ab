"""Backups in the catalog: register one by path, list, look up, locate its image file.

A backup's kind and parent come from its backing chain, read by the image layer with the
same rules as when it is opened (backing names inside the repository root, depth limit,
metadata budget), so a chain the reader would refuse is never registered. A backup's status
is checked through the repository's store, with the rules of the open that would follow (no
link followed out of the repository): a file that has vanished is ``missing`` (mounting it
gives BackupFileMissingError), one that now resolves outside the repository or is not a
regular file is ``refused`` (RepositoryEscapeError), one the host cannot read is
``unreadable`` (RepositoryIOError). Messages name files by their repository path, never by
a host path.
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
from filerestore.errors import (
    BackupFileMissingError,
    BackupNotFoundError,
    FileRestoreError,
    ImageNotFoundError,
    RepositoryEscapeError,
    RepositoryIOError,
    UsageError,
)
from filerestore.image import (
    DEFAULT_MAX_CHAIN_DEPTH,
    DEFAULT_METADATA_BUDGET,
    ChainLink,
    probe_backup,
)
from filerestore.source import LocalStore


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
    #: available, missing (file gone), unavailable (repository share not mounted), refused
    #: (the file now resolves outside the repository), unreadable (the host fails to read it)
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
        raise UsageError(f"{path} is outside the repository") from None
    if not rel.parts:
        raise UsageError(f"{path} is the repository root, not an image")
    return rel.as_posix()


def probe(
    root: Path,
    rel: str,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> Probed:
    """The chain of the image ``rel``, opened through the repository's store."""
    with LocalStore(root) as store:
        chain = probe_backup(store, rel, max_chain_depth, metadata_budget)
    return Probed(rel, chain, datetime.fromtimestamp(chain[0].modified, UTC))


def file_status(store: LocalStore | None, path: str) -> str:
    """The status of a backup's image file, checked by the walk the open would make."""
    if store is None:
        return "unavailable"
    try:
        store.stat(path)
    except RepositoryEscapeError:
        return "refused"
    except ImageNotFoundError:
        return "missing"
    except RepositoryIOError:
        return "unreadable"
    return "available"


def _store(repo: RepositoryInfo, available: bool) -> LocalStore | None:
    if not available:
        return None
    try:
        return LocalStore(repo.root_path)
    except FileRestoreError:  # gone or unreadable since the availability check
        return None


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
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> BackupInfo:
    """Register (or refresh) one image of ``repository``; ``path`` absolute or relative."""
    repo = get_repository(db, repository)
    require_available(repo)
    root = Path(repo.root_path)
    rel = relative_path(root, path)
    probed = probe(root, rel, max_chain_depth, metadata_budget)
    with db.write(lock=f"catalog:{repo.id}") as session:
        row, _ = upsert(session, repo.id, root, probed, vm_name, disk_name)
        backup_id = row.id
    return get_backup(db, backup_id)


def list_backups(db: Database, repository: str | None = None) -> list[BackupInfo]:
    """Every backup, or those of ``repository`` (RepositoryNotFoundError when there is no
    repository by that name: an empty list would say it has no backups)."""
    query = select(Backup, Repository).join(Repository).order_by(Backup.id)
    if repository is not None:
        get_repository(db, repository)
        query = query.where(Repository.name == repository)
    with db.read() as session:
        rows = session.execute(query).all()
        pairs = [(b, RepositoryInfo.of(r)) for b, r in rows]
    stores: dict[int, LocalStore | None] = {}
    out = []
    try:
        for backup, repo in pairs:
            if repo.id not in stores:
                available = check_availability(repo.kind, repo.root_path).available
                stores[repo.id] = _store(repo, available)
            out.append(_info(backup, repo, stores[repo.id]))
    finally:
        for store in stores.values():
            if store is not None:
                store.close()
    return out


def get_backup(db: Database, backup_id: int) -> BackupInfo:
    with db.read() as session:
        pair = session.execute(
            select(Backup, Repository).join(Repository).where(Backup.id == backup_id)
        ).first()
        if pair is None:
            raise BackupNotFoundError(f"no backup with id {backup_id}")
        backup, repo = pair[0], RepositoryInfo.of(pair[1])
    store = _store(repo, check_availability(repo.kind, repo.root_path).available)
    try:
        return _info(backup, repo, store)
    finally:
        if store is not None:
            store.close()


def locate_backup(db: Database, backup_id: int) -> BackupInfo:
    """The backup, checked readable: its repository reachable and its image file present,
    inside the repository and readable (the specific error otherwise)."""
    info = get_backup(db, backup_id)
    if info.status != "available":
        require_readable(get_repository(db, info.repository), backup_id, info.path)
    return info


def require_readable(repo: RepositoryInfo, backup_id: int, path: str) -> None:
    """The checks of :func:`locate_backup`, on rows already read (a session checkout reads
    them in its own transaction): the repository reachable, and the image file present,
    inside the repository and readable; the specific error otherwise."""
    require_available(repo)
    with LocalStore(repo.root_path) as store:
        try:
            store.stat(path)
        except ImageNotFoundError:
            raise BackupFileMissingError(
                f"backup {backup_id}: image file is missing from repository {repo.name!r}: {path}"
            ) from None


def _info(backup: Backup, repo: RepositoryInfo, store: LocalStore | None) -> BackupInfo:
    image = Path(repo.root_path) / backup.path
    status = file_status(store, backup.path)
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
