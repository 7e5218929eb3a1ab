"""Backups in the catalog: register one by path, list, look up, locate its image file.

A backup's kind and parent come from its backing chain, read by the image layer with the
same rules as when it is opened (backing names inside the repository root, depth limit,
metadata budget), so a chain the reader would refuse is never registered. A backup's status
is checked through the repository's store, with the rules of the open that would follow (no
link followed out of the repository): a file that has vanished is ``missing`` (mounting it
gives BackupFileMissingError), one that now resolves outside the repository or is not a
regular file is ``refused`` (RepositoryEscapeError), one the host cannot read is
``unreadable`` (RepositoryIOError); in an S3 repository a missing object is ``missing`` and
a store that does not answer makes it ``unavailable``. Messages name files by their
repository path, never by a host path.

Every function reads repositories through ``stores`` (:mod:`filerestore.catalog.stores`):
the caller's, so a worker's S3 repositories are read through its long-lived stores.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from filerestore.catalog.repositories import (
    RepositoryInfo,
    availability,
    available_repository,
    get_repository,
    require_available,
)
from filerestore.catalog.stores import S3_KIND, Stores, default_stores
from filerestore.db.engine import Database
from filerestore.db.models import Backup, Repository
from filerestore.errors import (
    BackupFileMissingError,
    BackupNotFoundError,
    FileRestoreError,
    ImageNotFoundError,
    RepositoryEscapeError,
    RepositoryIOError,
    ServiceUnavailableError,
    UsageError,
)
from filerestore.image import (
    DEFAULT_MAX_CHAIN_DEPTH,
    DEFAULT_METADATA_BUDGET,
    ChainLink,
    probe_backup,
)
from filerestore.records import same_fields
from filerestore.source import Store


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
    #: where the image is, for operators: a host path, or an s3:// URL
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


def repository_name(repo: RepositoryInfo, store: Store, path: str | os.PathLike[str]) -> str:
    """The name in the repository of ``path`` as a user gave it (for a local repository
    absolute, or relative to the root; for S3 a key under the prefix, or relative to it)."""
    if repo.kind == S3_KIND:
        return store.stat(str(path)).name  # the store's own name rules; missing: not found
    return relative_path(Path(repo.root_path), path)


def probe(
    store: Store,
    rel: str,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> Probed:
    """The chain of the image ``rel``, opened through the repository's store."""
    chain = probe_backup(store, rel, max_chain_depth, metadata_budget)
    return Probed(rel, chain, datetime.fromtimestamp(chain[0].modified, UTC))


def file_status(store: Store | None, path: str) -> str:
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
    except ServiceUnavailableError:  # an object store that stopped answering
        return "unavailable"
    return "available"


class _Statuses:
    """The status of each backup of one repository, for a listing: a local file is checked
    by a walk; an S3 repository is listed once (one request per 1,000 objects) rather than
    asked once per backup."""

    def __init__(self, repo: RepositoryInfo, stores: Stores) -> None:
        self.repo = repo
        self._store: Store | None = None
        self._keys: set[str] | None = None
        self._local: ExitStack = ExitStack()
        try:
            if repo.kind == S3_KIND:
                store = stores.s3(repo)
                self._keys = {meta.key for meta in store.list()}
                self._store = store
            elif availability(repo, stores).available:
                self._store = self._local.enter_context(stores.opened(repo))
        except FileRestoreError:  # unreachable now, or gone since the availability check
            self._store = None

    def status(self, path: str) -> str:
        if self._keys is not None:
            return "available" if path in self._keys else "missing"
        return file_status(self._store, path)

    def close(self) -> None:
        self._local.close()


def names_from_path(path: str) -> tuple[str | None, str]:
    """(VM, disk) named by a backup's path in its repository: the directory that holds it
    (None at the root) and the file name without its last suffix."""
    parts = Path(path).parts
    return (parts[-2] if len(parts) > 1 else None), Path(parts[-1]).stem


def upsert(
    session: Session,
    repo_id: int,
    probed: Probed,
    vm_name: str | None = None,
    disk_name: str | None = None,
) -> tuple[Backup, bool]:
    """Insert or update the backup row for ``probed``; True when it was inserted.

    Names not given: an incremental is named as its parent's row (so a whole chain is one
    disk of one VM, whatever its files are called); a full backup by its file, the disk by
    the file's stem and the VM by its directory (see :func:`names_from_path`)."""
    parent: Backup | None = None
    if len(probed.chain) > 1:
        parent_rel = probed.chain[1].name  # its path in the repository, links resolved
        parent = session.scalar(
            select(Backup).where(Backup.repository_id == repo_id, Backup.path == parent_rel)
        )
    parent_id = parent.id if parent is not None else None
    own_vm, own_disk = names_from_path(probed.path)
    chain_vm, chain_disk = (
        (parent.vm_name, parent.disk_name) if parent is not None else (own_vm, own_disk)
    )
    row = session.scalar(
        select(Backup).where(Backup.repository_id == repo_id, Backup.path == probed.path)
    )
    inserted = row is None
    if row is None:
        row = Backup(
            repository_id=repo_id,
            path=probed.path,
            vm_name=vm_name if vm_name is not None else chain_vm,
            disk_name=disk_name if disk_name is not None else chain_disk,
        )
        session.add(row)
    else:
        # a name given before is kept; one derived from the file alone (registered by an
        # older release, or before its parent was) takes the chain's
        if vm_name is not None or row.vm_name == own_vm:
            row.vm_name = vm_name if vm_name is not None else chain_vm
        if disk_name is not None or row.disk_name == own_disk:
            row.disk_name = disk_name if disk_name is not None else chain_disk
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
    stores: Stores | None = None,
) -> BackupInfo:
    """Register (or refresh) one image of ``repository``; ``path`` absolute or relative."""
    repo, stores = available_repository(db, repository, stores)
    with stores.opened(repo) as store:
        rel = repository_name(repo, store, path)
        probed = probe(store, rel, max_chain_depth, metadata_budget)
    with db.write(lock=f"catalog:{repo.id}") as session:
        row, _ = upsert(session, repo.id, probed, vm_name, disk_name)
        backup_id = row.id
    return get_backup(db, backup_id, stores)


def list_backups(
    db: Database, repository: str | None = None, stores: Stores | None = None
) -> list[BackupInfo]:
    """Every backup, or those of ``repository`` (RepositoryNotFoundError when there is no
    repository by that name: an empty list would say it has no backups)."""
    stores = stores or default_stores()
    query = select(Backup, Repository).join(Repository).order_by(Backup.id)
    if repository is not None:
        get_repository(db, repository)
        query = query.where(Repository.name == repository)
    with db.read() as session:
        rows = session.execute(query).all()
        pairs = [(b, RepositoryInfo.of(r)) for b, r in rows]
    statuses: dict[int, _Statuses] = {}
    out = []
    try:
        for backup, repo in pairs:
            if repo.id not in statuses:
                statuses[repo.id] = _Statuses(repo, stores)
            out.append(_info(backup, repo, statuses[repo.id].status(backup.path)))
    finally:
        for found in statuses.values():
            found.close()
    return out


def get_backup(db: Database, backup_id: int, stores: Stores | None = None) -> BackupInfo:
    stores = stores or default_stores()
    with db.read() as session:
        pair = session.execute(
            select(Backup, Repository).join(Repository).where(Backup.id == backup_id)
        ).first()
        if pair is None:
            raise BackupNotFoundError(f"no backup with id {backup_id}")
        backup, repo = pair[0], RepositoryInfo.of(pair[1])
    # S3: the one object is asked for (or known: s3_revalidate_after), no listing
    if repo.kind != S3_KIND and not availability(repo, stores).available:
        return _info(backup, repo, "unavailable")
    try:
        with stores.opened(repo) as store:
            return _info(backup, repo, file_status(store, backup.path))
    except FileRestoreError:  # gone or unreadable since the check, or no client for it
        return _info(backup, repo, "unavailable")


def locate_backup(db: Database, backup_id: int, stores: Stores | None = None) -> BackupInfo:
    """The backup, checked readable: its repository reachable and its image file present,
    inside the repository and readable (the specific error otherwise)."""
    info = get_backup(db, backup_id, stores)
    if info.status != "available":
        require_readable(get_repository(db, info.repository), backup_id, info.path, stores)
    return info


def require_readable(
    repo: RepositoryInfo, backup_id: int, path: str, stores: Stores | None = None
) -> None:
    """The checks of :func:`locate_backup`, on rows already read (a session checkout reads
    them in its own transaction): the repository reachable, and the image file present,
    inside the repository and readable; the specific error otherwise. For S3 the object is
    asked for (one HEAD, none while it is trusted: s3_revalidate_after); an unreachable
    store raises ObjectStoreUnavailableError."""
    stores = stores or default_stores()
    if repo.kind != S3_KIND:
        require_available(repo, stores)
    with stores.opened(repo) as store:
        try:
            store.stat(path)
        except ImageNotFoundError:
            raise BackupFileMissingError(
                f"backup {backup_id}: image file is missing from repository {repo.name!r}: {path}"
            ) from None


def _info(backup: Backup, repo: RepositoryInfo, status: str) -> BackupInfo:
    return BackupInfo(
        **same_fields(
            BackupInfo,
            backup,
            repository=repo.name,
            status=status,
            image_path=repo.location(backup.path),
            repository_root=repo.root_path,
        )
    )
