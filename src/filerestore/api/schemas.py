"""Request and response models: the OpenAPI schema at /docs is generated from these.

Guest names that are not valid UTF-8 are shown with ``\\xNN`` escapes in ``name`` and
``path`` (JSON must be valid UTF-8); ``path_query`` is the exact path, percent-encoded, to
pass back as the ``path`` query parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from filerestore.api.paths import display, path_query
from filerestore.fs.entry import Entry

MAX_ID = 2**63 - 1  # the largest integer a database id column holds

BackupId = Annotated[int, Field(ge=1, le=MAX_ID)]


def _time(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC)


class EntryOut(BaseModel):
    name: str
    path: str
    path_query: str = Field(description="The exact path, for the `path` query parameter.")
    kind: Literal["file", "dir", "symlink", "other"]
    size: int
    mode: int | None
    uid: int | None
    gid: int | None
    mtime: datetime | None
    symlink_target: str | None
    data_location: str | None = Field(
        default=None,
        description="Where a file's data is when it is not in the image (cloud, dedup, wim, "
        "...): such a file cannot be downloaded. Null for files whose data is here.",
    )

    @classmethod
    def of(cls, entry: Entry) -> EntryOut:
        return cls(
            name=display(entry.name),
            path=display(entry.path),
            path_query=path_query(entry.path),
            kind=entry.kind.value,
            size=entry.size,
            mode=entry.mode,
            uid=entry.uid,
            gid=entry.gid,
            mtime=_time(entry.mtime_ns),
            symlink_target=None if entry.target is None else display(entry.target),
            data_location=entry.data_location,
        )


class FileInfoOut(EntryOut):
    atime: datetime | None
    ctime: datetime | None
    birth_time: datetime | None
    mtime_ns: int | None
    inode: int | None
    nlink: int | None
    content_type: str | None = Field(default=None, description="Regular files only.")

    @classmethod
    def full(cls, entry: Entry, content_type: str | None) -> FileInfoOut:
        base = EntryOut.of(entry).model_dump()
        return cls(
            **base,
            atime=_time(entry.atime_ns),
            ctime=_time(entry.ctime_ns),
            birth_time=_time(entry.btime_ns),
            mtime_ns=entry.mtime_ns,
            inode=entry.inode,
            nlink=entry.nlink,
            content_type=content_type,
        )


class TotalsOut(BaseModel):
    mount_id: str
    paths: list[str] = Field(description="What was counted: each path resolved in the guest.")
    files: int
    dirs: int
    symlinks: int
    bytes: int = Field(description="Sum of the regular files' sizes.")
    skipped: int = Field(description="Devices, FIFOs and sockets: never archived.")
    complete: bool = Field(description="False when the count stopped at its cap (lower bounds).")


class ListingOut(BaseModel):
    mount_id: str
    path: str
    recursive: bool
    entries: list[EntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    total: int | None = Field(description="Entries in the directory (None when recursive).")


class MountRequest(BaseModel):
    backup_id: BackupId
    volume: str | None = None


class MountOut(BaseModel):
    mount_id: str
    backup_id: int
    volume: str | None
    mount_path: str | None
    nbd_device: str | None
    filesystem_type: str | None
    status: str
    error: str | None = None
    owner: str | None = None
    created_at: datetime
    last_accessed_at: datetime | None = None
    expires_at: datetime
    downloads: int = Field(default=0, description="Downloads of this session in progress.")


class MountListOut(BaseModel):
    mounts: list[MountOut]


class ResourcesOut(BaseModel):
    sessions_used: int
    sessions_limit: int
    downloads_in_progress: int
    readers_open: int
    memory_rss_bytes: int
    worker_pid: int


class CleanupStatusOut(BaseModel):
    running: bool
    interval_seconds: float
    last_run: datetime | None
    next_run: datetime | None
    runs: int
    sessions_cleaned: int
    failures: int
    last_error: str | None = None


class VolumeOut(BaseModel):
    id: str
    scheme: str
    offset: int | None
    size: int
    type: str
    type_name: str
    label: str | None
    filesystem: str | None
    filesystem_label: str | None
    filesystem_error: str | None


class BackupOut(BaseModel):
    id: int
    repository: str
    path: str
    vm_name: str | None
    disk_name: str | None
    kind: str
    parent_backup_id: int | None
    virtual_size: int
    created_at: datetime
    registered_at: datetime | None = None
    status: str = "available"
    index_state: Literal["none", "queued", "running", "done", "failed"] | None = Field(
        default=None,
        description="The file index's state of this backup (details: GET /backups/{id}/index).",
    )


class BackupDetailOut(BackupOut):
    chain: list[BackupOut]
    volumes: list[VolumeOut]


class BackupListOut(BaseModel):
    backups: list[BackupOut]


class BackupRegister(BaseModel):
    repository: str = Field(min_length=1, max_length=200)
    path: str = Field(
        min_length=1, max_length=4096, description="Image path relative to the repository root."
    )
    vm_name: str | None = Field(default=None, max_length=255)
    disk_name: str | None = Field(default=None, max_length=255)

    @field_validator("repository", "path", "vm_name", "disk_name")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value

    @field_validator("path")
    @classmethod
    def _components(cls, value: str) -> str:
        if any(len(part.encode()) > 255 for part in value.split("/")):
            raise ValueError("a path component is longer than 255 bytes")
        return value


class RepositoryOut(BaseModel):
    name: str
    kind: str
    root_path: str
    enabled: bool
    available: bool
    reason: str | None = None
    created_at: datetime | None = None


class RepositoryListOut(BaseModel):
    repositories: list[RepositoryOut]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    version: str


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail
