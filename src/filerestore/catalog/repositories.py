"""Backup repositories: add, list, look up, and whether one can be read right now.

An NFS or CIFS repository is a share the host mounts at the repository's root. When the
share is not mounted, the root is an empty directory of the host's own filesystem: reading
it would report every backup as gone. So before reading, the root must be a mount point of
the expected type; otherwise the repository is *unavailable*, which is not the same as empty.

An S3 repository is keys under a prefix of a bucket: its ``root_path`` is the URL
``s3://bucket/prefix/``, and the row also says where the bucket is (endpoint, region, path
style, TLS verification). It is available when the bucket answers a listing of the prefix
with this host's credentials; a bucket that does not answer, refuses them or does not exist
makes it unavailable (503, exit 6), never empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from filerestore.catalog.mountinfo import SHARE_FSTYPES, MountEntry, mount_at, read_mountinfo
from filerestore.catalog.stores import S3_KIND, Stores, default_stores
from filerestore.db.engine import Database
from filerestore.db.models import LIVE_STATES, Backup, Repository, RestoreMount
from filerestore.errors import (
    InvalidRepositoryError,
    RepositoryExistsError,
    RepositoryInUseError,
    RepositoryNotFoundError,
    RepositoryUnavailableError,
    ServiceUnavailableError,
)
from filerestore.records import same_fields
from filerestore.settings import RepositoryConfig, RepositoryKind
from filerestore.source.s3names import parse_s3_url

KINDS = ("local", "nfs", "cifs", S3_KIND)
#: where an S3 repository's bucket is and how it is reached: keyword arguments of
#: :func:`add_repository`, and attributes of a :class:`RepositorySpec` by the same names
S3_OPTIONS = ("endpoint", "region", "path_style", "verify_tls")


@dataclass(frozen=True)
class RepositoryInfo:
    id: int
    name: str
    kind: str
    root_path: str
    mount_source: str | None
    enabled: bool
    created_at: datetime
    #: S3 repositories: the object store's URL (None: AWS), the bucket's region, path-style
    #: requests, TLS verification (the credentials are each host's settings)
    endpoint: str | None = None
    region: str | None = None
    path_style: bool = True
    verify_tls: bool = True

    @classmethod
    def of(cls, row: Repository) -> RepositoryInfo:
        return cls(**same_fields(cls, row))

    def location(self, path: str) -> str:
        """Where the repository file ``path`` is, for operators: a host path or a URL."""
        if self.kind == S3_KIND:
            return self.root_path + path
        return str(Path(self.root_path) / path)


@dataclass(frozen=True)
class Availability:
    available: bool
    #: why the repository cannot be read now (None when it can)
    reason: str | None = None

    @property
    def status(self) -> str:
        return "available" if self.available else "unavailable"


def check_availability(
    kind: str,
    root: str | os.PathLike[str],
    mounts: list[MountEntry] | None = None,
    fstypes: Iterable[str] | None = None,
) -> Availability:
    """Whether ``root`` can be read as a repository of ``kind``.

    The reason names no host path: it reaches users (a refused mount) who are not shown where
    repositories live. ``fstypes`` overrides the filesystem types accepted for a share
    (tests use a tmpfs mount as the stand-in for an NFS share).
    """
    path = Path(root)
    if kind in SHARE_FSTYPES:
        entry = mount_at(path, read_mountinfo() if mounts is None else mounts)
        expected = frozenset(fstypes) if fstypes is not None else SHARE_FSTYPES[kind]
        if entry is None:
            return Availability(False, f"{kind} share is not mounted at the repository root")
        if entry.fstype not in expected:
            return Availability(
                False,
                f"the repository root is mounted as {entry.fstype}, not {kind} "
                f"({'/'.join(sorted(expected))})",
            )
    if not path.is_dir():
        return Availability(False, "repository root is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        return Availability(False, "repository root is not readable")
    return Availability(True)


def availability(repo: RepositoryInfo, stores: Stores | None = None) -> Availability:
    """Whether ``repo`` can be read now: its root checked, or its bucket asked (one request)."""
    if repo.kind != S3_KIND:
        return check_availability(repo.kind, repo.root_path)
    try:
        (stores or default_stores()).s3(repo).check()
    except ServiceUnavailableError as exc:
        return Availability(False, str(exc))
    return Availability(True)


def require_available(repo: RepositoryInfo, stores: Stores | None = None) -> None:
    found = availability(repo, stores)
    if not found.available:
        raise RepositoryUnavailableError(f"repository {repo.name!r}: {found.reason}")


def available_repository(
    db: Database, name: str, stores: Stores | None = None
) -> tuple[RepositoryInfo, Stores]:
    """The repository ``name``, checked readable now, and the stores to read it through
    (``stores``, else the process's)."""
    stores = stores or default_stores()
    repo = get_repository(db, name)
    require_available(repo, stores)
    return repo, stores


def add_repository(
    db: Database,
    name: str,
    root: str | os.PathLike[str],
    kind: str = "local",
    *,
    endpoint: str | None = None,
    region: str | None = None,
    path_style: bool = True,
    verify_tls: bool = True,
    stores: Stores | None = None,
    check: bool = True,
) -> RepositoryInfo:
    """Add a repository. A share must be mounted when it is added (its source is recorded);
    an S3 bucket must answer (unless ``check`` is false: a settings file's repository is
    added at start even while its store is down)."""
    if kind not in KINDS:
        raise InvalidRepositoryError(
            f"unknown repository kind {kind!r} (one of {', '.join(KINDS)})"
        )
    if not name or "/" in name or name != name.strip():
        raise InvalidRepositoryError(f"invalid repository name {name!r}")
    if kind == S3_KIND or str(root).startswith("s3://"):
        return _add_s3(db, name, str(root), endpoint, region, path_style, verify_tls, stores, check)
    if endpoint is not None or region is not None:
        raise InvalidRepositoryError("an endpoint and a region are for S3 repositories only")
    path = Path(root).absolute()
    source = None
    if kind in SHARE_FSTYPES:
        availability = check_availability(kind, path)
        if not availability.available:
            raise RepositoryUnavailableError(
                f"cannot add repository {name!r}: {availability.reason}"
            )
        entry = mount_at(path, read_mountinfo())
        source = entry.source if entry else None
    elif not path.is_dir():
        raise InvalidRepositoryError(f"repository root is not a directory: {path}")
    row = Repository(name=name, kind=kind, root_path=str(path), mount_source=source, enabled=True)
    return _insert(db, row)


class RepositorySpec(Protocol):
    """A repository to add as a request or the settings file declares it (the arguments of
    :func:`add_repository` by the same names; ``path`` is its ``root``)."""

    name: str
    path: str
    kind: RepositoryKind
    endpoint: str | None
    region: str | None
    path_style: bool
    verify_tls: bool


def add_declared(
    db: Database, spec: RepositorySpec, *, stores: Stores | None = None, check: bool = True
) -> RepositoryInfo:
    """:func:`add_repository` of what ``spec`` declares (its S3 options by their names)."""
    options = {key: getattr(spec, key) for key in S3_OPTIONS}
    return add_repository(
        db, spec.name, spec.path, spec.kind, stores=stores, check=check, **options
    )


def _add_s3(
    db: Database,
    name: str,
    url: str,
    endpoint: str | None,
    region: str | None,
    path_style: bool,
    verify_tls: bool,
    stores: Stores | None,
    check: bool,
) -> RepositoryInfo:
    bucket, prefix = parse_s3_url(url)
    if endpoint is not None and not endpoint.startswith(("https://", "http://")):
        raise InvalidRepositoryError(f"the endpoint {endpoint!r} is not an http(s):// URL")
    row = Repository(
        name=name,
        kind=S3_KIND,
        root_path=f"s3://{bucket}/{prefix}",
        mount_source=None,
        enabled=True,
        endpoint=endpoint.rstrip("/") if endpoint else None,
        region=region or None,
        path_style=path_style,
        verify_tls=verify_tls,
    )
    if check:
        new = RepositoryInfo(
            0, name, S3_KIND, row.root_path, None, True, datetime.now(UTC),
            row.endpoint, row.region, path_style, verify_tls,
        )  # fmt: skip
        try:
            (stores or default_stores()).check_new(new)
        except ServiceUnavailableError as exc:
            raise RepositoryUnavailableError(f"cannot add repository {name!r}: {exc}") from exc
    return _insert(db, row)


def _insert(db: Database, row: Repository) -> RepositoryInfo:
    name = row.name
    try:
        with db.write() as session:
            if session.scalar(select(Repository.id).where(Repository.name == name)) is not None:
                raise RepositoryExistsError(f"a repository named {name!r} already exists")
            session.add(row)
    except IntegrityError as exc:  # a concurrent add of the same name won the race
        raise RepositoryExistsError(f"a repository named {name!r} already exists") from exc
    return RepositoryInfo.of(row)


def repositories_with_availability(
    db: Database, stores: Stores | None = None
) -> list[tuple[RepositoryInfo, Availability]]:
    """Every repository, and whether it can be read right now."""
    return [(r, availability(r, stores)) for r in list_repositories(db)]


def list_repositories(db: Database) -> list[RepositoryInfo]:
    with db.read() as session:
        rows = session.scalars(select(Repository).order_by(Repository.name)).all()
        return [RepositoryInfo.of(r) for r in rows]


def get_repository(db: Database, name: str) -> RepositoryInfo:
    with db.read() as session:
        row = session.scalar(select(Repository).where(Repository.name == name))
        if row is None:
            raise RepositoryNotFoundError(f"no repository named {name!r}")
        return RepositoryInfo.of(row)


def sync_configured(db: Database, configured: list[RepositoryConfig]) -> list[str]:
    """Add the settings file's repositories that the catalog lacks; names of those added."""
    known = {r.name for r in list_repositories(db)}
    added = []
    for repo in configured:
        if repo.name in known:
            continue
        try:
            add_declared(db, repo, check=False)
        except RepositoryExistsError:
            continue  # another instance starting from the same settings file added it
        added.append(repo.name)
    return added


@dataclass(frozen=True)
class RemovedRepository:
    repository: RepositoryInfo
    #: how many backups' rows went with it (their image files are not touched)
    backups: int


def remove_repository(db: Database, name: str) -> RemovedRepository:
    """Remove a repository and its backups' rows from the catalog, whatever its kind; the
    files it holds are never touched (``repo add`` and ``scan`` bring them back, with new
    ids). Refused with RepositoryInUseError while a session of one of its backups is open:
    the caller ends those first (the service layer's ``end_repository_sessions``)."""
    repo = get_repository(db, name)
    with db.write(lock=f"catalog:{repo.id}") as session:
        of_repo = select(Backup.id).where(Backup.repository_id == repo.id)
        live = session.scalars(
            select(RestoreMount.id)
            .where(RestoreMount.backup_id.in_(of_repo), RestoreMount.status.in_(LIVE_STATES))
            .order_by(RestoreMount.created_at)
        ).all()
        if live:
            raise RepositoryInUseError(
                f"repository {name!r} has {len(live)} open session(s) of its backups "
                f"({', '.join(live)}): close them, or remove it with --force"
            )
        count = session.scalar(select(func.count()).where(Backup.repository_id == repo.id)) or 0
        # rows of ended sessions (failed ones) go with their backups: a foreign key cascade
        session.execute(delete(RestoreMount).where(RestoreMount.backup_id.in_(of_repo)))
        session.execute(delete(Backup).where(Backup.repository_id == repo.id))
        session.execute(delete(Repository).where(Repository.id == repo.id))
    return RemovedRepository(repo, count)
