"""Catalog reads and single-backup registration for the catalog routes.

Image paths come from the catalog, never from a request: registering names an image by
repository and a path relative to its root, which must resolve (host symlinks followed)
inside that root, as backing files must.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from filerestore.db.engine import Database
from filerestore.db.models import Backup, Repository
from filerestore.errors import (
    BackupNotFoundError,
    ImageNotFoundError,
    PathRefusedError,
    RepositoryNotFoundError,
)
from filerestore.image import probe_chain


def repository_available(repo: Repository) -> bool:
    root = Path(repo.root_path)
    if not root.is_dir():
        return False
    if repo.kind in ("nfs", "cifs"):
        return os.path.ismount(root)
    return True


def repositories(db: Database) -> list[Repository]:
    with db.read() as s:
        return list(s.scalars(select(Repository).order_by(Repository.name)))


def backups(
    db: Database, vm: str | None = None, repository: str | None = None
) -> list[tuple[Backup, Repository]]:
    query = select(Backup, Repository).join(Repository).order_by(Backup.id)
    if vm is not None:
        query = query.where(Backup.vm_name == vm)
    if repository is not None:
        query = query.where(Repository.name == repository)
    with db.read() as s:
        return [(b, r) for b, r in s.execute(query).tuples()]


def backup(db: Database, backup_id: int) -> tuple[Backup, Repository]:
    with db.read() as s:
        row = s.execute(
            select(Backup, Repository).join(Repository).where(Backup.id == backup_id)
        ).first()
    if row is None:
        raise BackupNotFoundError(f"no backup with id {backup_id}")
    return row.tuple()


def chain(db: Database, backup_id: int, limit: int = 256) -> list[tuple[Backup, Repository]]:
    """The backup and its parents, top first."""
    out = [backup(db, backup_id)]
    while out[-1][0].parent_backup_id is not None and len(out) < limit:
        out.append(backup(db, out[-1][0].parent_backup_id))
    return out


def image_status(b: Backup, repo: Repository) -> str:
    if not repository_available(repo):
        return "unavailable"
    return "available" if (Path(repo.root_path) / b.path).is_file() else "missing"


def register(
    db: Database,
    repository: str,
    rel_path: str,
    vm_name: str | None,
    disk_name: str | None,
    max_chain_depth: int = 64,
) -> Backup:
    """Register one image (idempotent: the existing row is returned)."""
    with db.read() as s:
        repo = s.scalar(select(Repository).where(Repository.name == repository))
    if repo is None:
        raise RepositoryNotFoundError(f"no repository named {repository!r}")
    if "\x00" in rel_path or Path(rel_path).is_absolute() or ".." in Path(rel_path).parts:
        raise PathRefusedError("the backup path must be relative to the repository root")
    root = Path(os.path.realpath(repo.root_path))
    image = Path(os.path.realpath(root / rel_path))
    if not image.is_relative_to(root):
        raise PathRefusedError("the backup path leaves the repository root")
    if not image.is_file():
        raise ImageNotFoundError(f"no image at {rel_path} in repository {repository}")
    links = probe_chain(image, repository=root, max_chain_depth=max_chain_depth)
    rel = str(image.relative_to(root))
    parent_id = None
    if len(links) > 1:
        parent_rel = str(Path(os.path.realpath(links[1].path)).relative_to(root))
        with db.read() as s:
            parent_id = s.scalar(
                select(Backup.id).where(Backup.repository_id == repo.id, Backup.path == parent_rel)
            )
    with db.write() as s:
        found = s.scalar(select(Backup).where(Backup.repository_id == repo.id, Backup.path == rel))
        if found is not None:
            return found
        row = Backup(
            repository_id=repo.id,
            path=rel,
            vm_name=vm_name,
            disk_name=disk_name,
            kind="incremental" if len(links) > 1 else "full",
            parent_backup_id=parent_id,
            virtual_size=links[0].virtual_size,
            created_at=datetime.fromtimestamp(image.stat().st_mtime, UTC),
            registered_at=datetime.now(UTC),
        )
        s.add(row)
        s.flush()
        return row


def add_repository(db: Database, name: str, root: str, kind: str = "local") -> Repository:
    """Add a repository row (idempotent by name)."""
    with db.write() as s:
        found = s.scalar(select(Repository).where(Repository.name == name))
        if found is not None:
            return found
        row = Repository(
            name=name, kind=kind, root_path=root, enabled=True, created_at=datetime.now(UTC)
        )
        s.add(row)
        s.flush()
        return row
