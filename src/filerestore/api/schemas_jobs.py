"""Request and response models of the restore-job routes (derived from the service's
records, as in :mod:`filerestore.api.schemas`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from filerestore.api.schemas import model, values_of
from filerestore.service.jobs import Job, JobProgress, ManifestEntry
from filerestore.service.targets import TargetInfo

_JobProgress = model("JobProgress", JobProgress)


class JobProgressOut(_JobProgress):  # type: ignore[misc,valid-type]
    """Counts so far; ``percent`` of the bytes (of the entries when there are no bytes)
    counted before the first run; rates of the current run (MB = 10^6 bytes)."""


_Job = model(
    "Job",
    Job,
    types={
        "progress": JobProgressOut,
        "status": Literal["queued", "running", "completed", "failed", "cancelled"],
        "policy": Literal["skip", "rename", "overwrite"],
    },
    descriptions={
        "paths": "The guest paths restored, printable (bytes that are not UTF-8 as \\xNN).",
        "unkept": "Metadata the target could not keep (owners, extended attributes, ...).",
        "manifest_sha256": "SHA-256 of the manifest's text, as the job's audit event names it.",
    },
)


class JobOut(_Job):  # type: ignore[misc,valid-type]
    """A restore job with its progress."""

    @classmethod
    def of(cls, job: Job) -> JobOut:
        progress = JobProgressOut(**values_of(job.progress))
        return cls(**values_of(job) | {"progress": progress})


class JobListOut(BaseModel):
    jobs: list[JobOut]


class JobRequest(BaseModel):
    mount_id: str = Field(min_length=1, max_length=64, description="The session to read from.")
    paths: list[str] = Field(
        min_length=1,
        max_length=1000,
        description="Guest paths to restore, percent-encoded bytes (an entry's `path_query`).",
    )
    target: str = Field(min_length=1, max_length=200, description="A configured target's name.")
    destination: str = Field(
        default="",
        max_length=4096,
        description="A directory inside the target (relative; created when missing).",
    )
    policy: Literal["skip", "rename", "overwrite"] = Field(
        default="skip", description="What to do when the destination holds an entry's name."
    )

    @field_validator("paths")
    @classmethod
    def _bounded(cls, value: list[str]) -> list[str]:
        if any(len(p) > 3 * 4096 for p in value):
            raise ValueError("a path is longer than 4096 bytes")
        return value


_Target = model("TargetInfo", TargetInfo)


class TargetOut(_Target):  # type: ignore[misc,valid-type]
    """A restore target; ``location`` (its host path or SSH address) only for admins."""


class TargetListOut(BaseModel):
    targets: list[TargetOut]


_Manifest = model("ManifestEntry", ManifestEntry)


class ManifestEntryOut(_Manifest):  # type: ignore[misc,valid-type]
    """One entry of a job's manifest: where it was written (relative to the destination),
    and for a file its size and SHA-256."""
