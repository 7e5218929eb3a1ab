"""Request and response models: the OpenAPI schema at /docs is generated from these.

The response models are derived from the core's records (:func:`fields_of`), so a field has
one name from the core through the API's JSON (and the CLI's ``--json``) to the web page,
and a field added to a record appears here without a line of code. What a model adds or
leaves out is spelled out where it is defined: a listing entry adds ``path_query``; a
backup leaves out the host paths of its image and repository.

Guest names that are not valid UTF-8 are shown with ``\\xNN`` escapes in ``name``, ``path``
and ``target`` (JSON must be valid UTF-8); ``path_query`` is the exact path, percent-encoded,
to pass back as the ``path`` query parameter. Times of entries are integers: nanoseconds
since the Unix epoch (UTC), as the filesystems keep them.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator

from filerestore.api.paths import display, path_query
from filerestore.catalog import Availability, BackupInfo, RepositoryInfo
from filerestore.fs.entry import Entry
from filerestore.restore.browse import Page, Totals
from filerestore.restore.describe import VolumeDescription
from filerestore.service.cleanup import CleanupStatus
from filerestore.service.resources import ResourceFigures
from filerestore.service.session import Session

MAX_ID = 2**63 - 1  # the largest integer a database id column holds

BackupId = Annotated[int, Field(ge=1, le=MAX_ID)]


def no_nul(value: str | None) -> str | None:
    """Validates text a request carries into a path or a database row: never a NUL."""
    if value is not None and "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def fields_of(
    record: type,
    *,
    exclude: Collection[str] = (),
    types: Mapping[str, Any] | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Pydantic field definitions for a dataclass record's fields, in order; ``types``
    replaces a field's type (a nested record's model, or a narrower type), ``descriptions``
    documents a field in the OpenAPI schema."""
    hints = typing.get_type_hints(record)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name in exclude:
            continue
        kind = (types or {}).get(f.name, hints[f.name])
        description = (descriptions or {}).get(f.name)
        if f.default is not dataclasses.MISSING:
            out[f.name] = (kind, Field(default=f.default, description=description))
        elif f.default_factory is not dataclasses.MISSING:
            factory = f.default_factory
            out[f.name] = (kind, Field(default_factory=factory, description=description))
        else:
            out[f.name] = (kind, Field(..., description=description))
    return out


def values_of(record: object, exclude: Collection[str] = ()) -> dict[str, Any]:
    """A record's field values by name (shallow: nested records stay objects)."""
    return {
        f.name: getattr(record, f.name)
        for f in dataclasses.fields(record)  # type: ignore[arg-type]
        if f.name not in exclude
    }


def model(name: str, *records: type, **options: Any) -> type[BaseModel]:
    """A model holding the fields of ``records`` (see :func:`fields_of` for ``options``),
    for a class statement to subclass."""
    exclude = options.pop("exclude", ())
    types = options.pop("types", None)
    descriptions = options.pop("descriptions", None)
    definitions: dict[str, Any] = {}
    for record in records:
        definitions |= fields_of(record, exclude=exclude, types=types, descriptions=descriptions)
    for key, value in options.items():
        definitions[key] = value
    return create_model(f"{name}Fields", **definitions)


# Every derived model below subclasses a class made at import time; mypy cannot follow a
# dynamic base class, hence the one ignore per model.


#: the types and descriptions of the entry fields, for every model holding them: a listing's
#: entries, and the file index's versions (one vocabulary for both)
ENTRY_TYPES: dict[str, Any] = {"kind": Literal["file", "dir", "symlink", "other"]}
ENTRY_DESCRIPTIONS: dict[str, str] = {
    "data_location": "Where a file's data is when it is not in the image (cloud, dedup, "
    "wim, ...): such a file cannot be downloaded. Null for files whose data is here.",
    "target": "A symbolic link's target, as the guest stores it.",
}
PATH_QUERY = (str, Field(description="The exact path, for the `path` query parameter."))


def shown_names(record: object) -> dict[str, Any]:
    """The guest names of a record (``name``, ``path``, ``target``, those it has) as JSON
    shows them (``\\xNN`` for bytes that are not UTF-8)."""
    shown: dict[str, Any] = {}
    for key in ("name", "path", "target"):
        if hasattr(record, key):
            value = getattr(record, key)
            shown[key] = None if value is None else display(value)
    return shown


_Entry = model(
    "Entry", Entry, types=ENTRY_TYPES, descriptions=ENTRY_DESCRIPTIONS, path_query=PATH_QUERY
)


class EntryOut(_Entry):  # type: ignore[misc,valid-type]
    """An entry of a guest filesystem: the fs layer's Entry, plus ``path_query``."""

    @classmethod
    def of(cls, entry: Entry) -> EntryOut:
        values = values_of(entry) | shown_names(entry)
        return cls(**values, path_query=path_query(entry.path))


class FileInfoOut(EntryOut):
    content_type: str | None = Field(default=None, description="Regular files only.")
    target_kind: Literal["file", "dir", "other", "dangling"] | None = Field(
        default=None,
        description="Symbolic links only: the kind of what the link leads to inside the "
        "guest, or dangling (its target does not exist, or links loop).",
    )

    @classmethod
    def full(
        cls, entry: Entry, content_type: str | None, target_kind: str | None = None
    ) -> FileInfoOut:
        return cls(
            **EntryOut.of(entry).model_dump(), content_type=content_type, target_kind=target_kind
        )


_Totals = model(
    "Totals",
    Totals,
    mount_id=(str, ...),
    paths=(list[str], Field(description="What was counted: each path resolved in the guest.")),
)


class TotalsOut(_Totals):  # type: ignore[misc,valid-type]
    """What a download of some paths would hold (``complete`` is False when the count
    stopped at its cap: the figures are then lower bounds)."""


_Page = model(
    "Page",
    Page,
    types={"entries": list[EntryOut]},
    mount_id=(str, ...),
    path=(str, ...),
    recursive=(bool, ...),
)


class ListingOut(_Page):  # type: ignore[misc,valid-type]
    """One page of a listing: pass ``next_cursor`` as ``cursor`` for the next; ``total``
    is the directory's entry count (None when recursive)."""


class MountRequest(BaseModel):
    backup_id: BackupId
    volume: str | None = None


_Session = model("Session", Session)


class MountOut(_Session):  # type: ignore[misc,valid-type]
    """A restore session ("mount")."""


class MountListOut(BaseModel):
    mounts: list[MountOut]


_ResourceFigures = model("ResourceFigures", ResourceFigures)


class ResourcesOut(_ResourceFigures):  # type: ignore[misc,valid-type]
    """The answering worker's figures: session slots, downloads, readers, memory."""


_CleanupStatus = model("CleanupStatus", CleanupStatus, exclude={"last_cleaned"})


class CleanupStatusOut(_CleanupStatus):  # type: ignore[misc,valid-type]
    """The answering worker's cleanup thread (the ids it cleaned are not shown: they may
    be other principals' sessions)."""


_VolumeDescription = model("VolumeDescription", VolumeDescription)


class VolumeOut(_VolumeDescription):  # type: ignore[misc,valid-type]
    """A volume of a backup and the filesystem recognised on it."""


_BackupInfo = model("BackupInfo", BackupInfo, exclude={"image_path", "repository_root"})


class BackupOut(_BackupInfo):  # type: ignore[misc,valid-type]
    """A backup in the catalog; ``path`` is relative to its repository's root."""

    index_state: Literal["none", "queued", "running", "done", "failed"] | None = Field(
        default=None,
        description="The file index's state of this backup (details: GET /backups/{id}/index).",
    )

    @classmethod
    def of(cls, backup: BackupInfo) -> BackupOut:
        values = values_of(backup, exclude={"image_path", "repository_root"})
        return cls(**values | {"path": display(backup.path)})  # a host name need not be UTF-8


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

    _no_nul = field_validator("repository", "path", "vm_name", "disk_name")(no_nul)

    @field_validator("path")
    @classmethod
    def _components(cls, value: str) -> str:
        if any(len(part.encode()) > 255 for part in value.split("/")):
            raise ValueError("a path component is longer than 255 bytes")
        return value


_Repository = model("RepositoryInfo", RepositoryInfo, Availability)


class RepositoryOut(_Repository):  # type: ignore[misc,valid-type]
    """A repository and whether it can be read now (``reason`` says why not)."""

    @classmethod
    def of(cls, repo: RepositoryInfo, availability: Availability) -> RepositoryOut:
        values = values_of(repo) | values_of(availability)
        return cls(**values | {"root_path": display(repo.root_path)})


class RepositoryAdd(BaseModel):
    """A repository to add: ``path`` is a host directory, or ``s3://BUCKET/PREFIX``."""

    name: str = Field(min_length=1, max_length=200)
    path: str = Field(
        min_length=1,
        max_length=4096,
        description="Root directory on the hosts, or s3://BUCKET/PREFIX for kind s3.",
    )
    kind: Literal["local", "nfs", "cifs", "s3"] = "local"
    endpoint: str | None = Field(
        default=None, max_length=2048, description="kind s3: the object store's URL."
    )
    region: str | None = Field(default=None, max_length=64)
    path_style: bool = True
    verify_tls: bool = True

    _no_nul = field_validator("name", "path", "endpoint", "region")(no_nul)


class RepositoryListOut(BaseModel):
    repositories: list[RepositoryOut]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    version: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    choices: list[str] | None = Field(
        default=None, description="ambiguous_volume only: the volumes to choose from."
    )


class ErrorOut(BaseModel):
    error: ErrorDetail
