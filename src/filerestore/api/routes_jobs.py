"""Restore-job routes: targets, create, list, get (with progress), cancel, manifest.

A job belongs to the token that created it; an admin sees every job. Creating one checks
the session as every session route does (owner, state), the target by name and the
destination (refused by name when it would leave the target); the service's runners do the
work. The manifest is streamed as JSON Lines, one entry a line, never held whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from filerestore.api import schemas_jobs as sj
from filerestore.api.auth import Caller
from filerestore.api.paths import guest_path
from filerestore.api.schemas import ErrorOut, values_of
from filerestore.api.state import app_state
from filerestore.service import jobs
from filerestore.service.targets import list_targets

router = APIRouter(prefix="/restore", tags=["restore jobs"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 409, 422, 503)
}


@router.get("/targets", response_model=sj.TargetListOut, responses=ERRORS)
async def targets(request: Request, who: Caller) -> sj.TargetListOut:
    """The targets restore jobs may write to (configured by an admin)."""
    found = list_targets(app_state(request).settings, who.admin)
    return sj.TargetListOut(targets=[sj.TargetOut(**values_of(t)) for t in found])


@router.post("/jobs", status_code=201, response_model=sj.JobOut, responses=ERRORS)
async def create(body: sj.JobRequest, request: Request, who: Caller) -> sj.JobOut:
    """Queue a restore job of `paths` from a session into a target."""
    st = app_state(request)
    paths = [guest_path(unquote_to_bytes(p)) for p in body.paths]
    job = await run_in_threadpool(
        jobs.create_job,
        st.db,
        st.settings,
        who,
        body.mount_id,
        paths,
        body.target,
        body.destination,
        body.policy,
    )
    return sj.JobOut.of(job)


@router.get("/jobs", response_model=sj.JobListOut, responses=ERRORS)
async def list_(request: Request, who: Caller) -> sj.JobListOut:
    found = await run_in_threadpool(jobs.list_jobs, app_state(request).db, who)
    return sj.JobListOut(jobs=[sj.JobOut.of(j) for j in found])


@router.get("/jobs/{job_id}", response_model=sj.JobOut, responses=ERRORS)
async def get(job_id: str, request: Request, who: Caller) -> sj.JobOut:
    """A job with its progress."""
    job = await run_in_threadpool(jobs.get_job, app_state(request).db, who, job_id)
    return sj.JobOut.of(job)


@router.post("/jobs/{job_id}/cancel", response_model=sj.JobOut, responses=ERRORS)
async def cancel(job_id: str, request: Request, who: Caller) -> sj.JobOut:
    """Cancel a queued job at once, a running one at its next batch (about a second)."""
    job = await run_in_threadpool(jobs.cancel_job, app_state(request).db, who, job_id)
    return sj.JobOut.of(job)


@router.get(
    "/jobs/{job_id}/manifest",
    response_class=StreamingResponse,
    responses={**ERRORS, 200: {"content": {"application/x-ndjson": {}}}},
)
async def manifest(job_id: str, request: Request, who: Caller) -> StreamingResponse:
    """The job's manifest as JSON Lines (ManifestEntryOut), in walk order."""
    db = app_state(request).db
    entries = jobs.manifest(db, who, job_id)
    first = await run_in_threadpool(next, entries, None)  # the visibility check, before 200

    def lines() -> Iterator[bytes]:
        if first is None:
            return
        for entry in _chain(first, entries):
            yield (json.dumps(values_of(entry), ensure_ascii=False) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _chain(
    first: jobs.ManifestEntry, rest: Iterator[jobs.ManifestEntry]
) -> Iterator[jobs.ManifestEntry]:
    yield first
    yield from rest
