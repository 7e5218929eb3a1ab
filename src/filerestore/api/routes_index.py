"""Index routes: search across backups, a path's history, the diff of two backups, and the
index jobs (state, queue, cancel).

Every token may open every backup of the catalog, so every backup is searched; the index's
queries take that set (``allowed``) and would show nothing else. Name, glob and path
values are read as the other routes read ``path`` (percent-decoded bytes, so names that are
not UTF-8 can be searched for). A diff is streamed as JSON lines (one per changed path, then
one ``{"totals": ...}``); its errors (backups of two disks, a backup not indexed) are
answered before the first line, as a 4xx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from filerestore import catalog
from filerestore.api import schemas as s
from filerestore.api import schemas_index as si
from filerestore.api.auth import Admin, Caller
from filerestore.api.paths import query_values, request_path
from filerestore.api.routes_restore import ERRORS
from filerestore.api.state import app_state
from filerestore.db.engine import Database
from filerestore.errors import InvalidParameterError
from filerestore.fs.entry import EntryKind
from filerestore.index import jobs
from filerestore.index.diff import BackupDiff
from filerestore.index.hashing import ContentHashes
from filerestore.index.history import path_history
from filerestore.index.search import MAX_LIMIT, SearchQuery, search
from filerestore.service import audit

router = APIRouter(tags=["index"])
IdPath = Annotated[int, Path(ge=1, le=s.MAX_ID)]
MAX_TEXT = 1024
JobState = Literal["queued", "running", "done", "failed", "cancelled"]


def allowed_backups(db: Database) -> set[int]:
    """The backups a caller may open: every one in the catalog."""
    return {b.id for b in catalog.list_backups(db)}


def _text(request: Request, name: str) -> str | None:
    """A free-text query value (percent-decoded bytes, surrogate-escaped), or None."""
    values = query_values(request, name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidParameterError(f"give {name!r} once")
    raw = values[0]
    if not raw or b"\x00" in raw or len(raw) > MAX_TEXT:
        raise InvalidParameterError(f"{name!r} must be 1 to {MAX_TEXT} bytes without NUL")
    return raw.decode("utf-8", "surrogateescape")


@router.get("/search", response_model=si.SearchOut, responses=ERRORS)
async def search_route(
    request: Request,
    who: Caller,
    name: Annotated[str | None, Query(description="Substring of the name (any case).")] = None,
    glob: Annotated[
        str | None, Query(description="Glob the whole name matches (`*`, `?`, `[...]`).")
    ] = None,
    path: Annotated[str | None, Query(description="Only under this guest path.")] = None,
    kind: Annotated[EntryKind | None, Query()] = None,
    size_min: Annotated[int | None, Query(ge=0, le=s.MAX_ID)] = None,
    size_max: Annotated[int | None, Query(ge=0, le=s.MAX_ID)] = None,
    mtime_from: datetime | None = None,
    mtime_to: datetime | None = None,
    vm: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    disk: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    backup_id: Annotated[list[int] | None, Query(description="Only these backups.")] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> si.SearchOut:
    """Entries of every indexed backup, grouped by path, each with its matching versions
    and the backups that hold them; keyset-paged (pass ``next_cursor`` back as ``cursor``).
    """
    for value in backup_id or ():
        if not 1 <= value <= s.MAX_ID:
            raise InvalidParameterError(f"backup_id {value} is out of range")
    query = SearchQuery(
        name=_text(request, "name"),
        glob=_text(request, "glob"),
        path_prefix=None if path is None else request_path(request),
        kind=kind,
        size_min=size_min,
        size_max=size_max,
        mtime_from=mtime_from,
        mtime_to=mtime_to,
        vm_name=vm,
        disk_name=disk,
        backup_ids=backup_id,
        created_from=created_from,
        created_to=created_to,
        limit=limit,
        cursor=cursor,
    )
    db = app_state(request).db

    def work() -> si.SearchOut:
        page = search(db, query, allowed_backups(db))
        return si.SearchOut(hits=[si.HitOut.of(h) for h in page.hits], next_cursor=page.next_cursor)

    return await run_in_threadpool(work)


@router.get("/backups/{backup_id}/history", response_model=si.HistoryOut, responses=ERRORS)
async def history_route(
    backup_id: IdPath,
    request: Request,
    who: Caller,
    path: Annotated[str, Query(description="Guest path (percent-encoded bytes).")],
    volume: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
) -> si.HistoryOut:
    """Every version of ``path`` across the backups of this backup's disk, with when it
    appeared, changed and vanished, and the last backup that holds it."""
    guest = request_path(request, default=None)
    db = app_state(request).db

    def work() -> si.HistoryOut:
        return si.HistoryOut.of(path_history(db, backup_id, guest, allowed_backups(db), volume))

    return await run_in_threadpool(work)


@router.get(
    "/backups/{old_id}/diff/{new_id}",
    response_class=StreamingResponse,
    responses={**ERRORS, 200: {"content": {"application/x-ndjson": {}}}},
)
async def diff_route(
    old_id: IdPath,
    new_id: IdPath,
    request: Request,
    who: Caller,
    volume: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    content: Annotated[
        bool, Query(description="Compare changed files' contents (reads them when unhashed).")
    ] = False,
) -> StreamingResponse:
    """What differs between two backups of one disk (or under ``path`` in them), as JSON
    lines: one per path (``added``, ``removed``, ``changed`` with the fields that differ),
    then ``{"totals": ...}``."""
    guest = request_path(request)
    st = app_state(request)
    db = st.db

    def start() -> tuple[BackupDiff, Iterator[str]]:
        # contents unhashed in the index are read through this worker's stores (local, S3)
        hashes = ContentHashes(db, st.settings, st.sessions.stores)
        diff = BackupDiff(
            db,
            old_id,
            new_id,
            allowed_backups(db),
            volume=volume,
            path=guest,
            content=content,
            hashes=hashes,
        )
        try:
            entries = iter(diff)
            first = next(entries, None)  # the errors of a diff come before its first entry
        except BaseException:
            hashes.close()
            raise

        def lines() -> Iterator[str]:
            try:
                if first is not None:
                    yield json.dumps(si.diff_line(first)) + "\n"
                    for entry in entries:
                        yield json.dumps(si.diff_line(entry)) + "\n"
                yield json.dumps(si.totals_line(diff.totals)) + "\n"
            finally:
                hashes.close()  # the backups it opened

        return diff, lines()

    _, body = await run_in_threadpool(start)
    return StreamingResponse(body, media_type="application/x-ndjson")


@router.get("/index", response_model=si.IndexStateListOut, responses=ERRORS)
async def index_states(request: Request, who: Caller) -> si.IndexStateListOut:
    """Every backup's index state: none, queued, running (with progress), done, failed."""
    db = app_state(request).db

    def work() -> si.IndexStateListOut:
        states = jobs.index_states(db, allowed_backups(db))
        return si.IndexStateListOut(
            backups=[si.IndexStateOut.of(v) for _, v in sorted(states.items())]
        )

    return await run_in_threadpool(work)


@router.get("/backups/{backup_id}/index", response_model=si.IndexStateOut, responses=ERRORS)
async def index_state(backup_id: IdPath, request: Request, who: Caller) -> si.IndexStateOut:
    db = app_state(request).db

    def work() -> si.IndexStateOut:
        catalog.get_backup(db, backup_id)  # 404 for an unknown backup
        return si.IndexStateOut.of(jobs.index_states(db, [backup_id])[backup_id])

    return await run_in_threadpool(work)


@router.post(
    "/backups/{backup_id}/index", status_code=202, response_model=si.IndexJobOut, responses=ERRORS
)
async def queue_index(backup_id: IdPath, request: Request, who: Admin) -> si.IndexJobOut:
    """Queue an index job for the backup (admin tokens); its active job if it has one."""
    db = app_state(request).db

    def work() -> si.IndexJobOut:
        catalog.get_backup(db, backup_id)
        job = jobs.enqueue(db, backup_id, requested_by=who.actor)
        queued = audit.Event(
            who.actor, "index", "queued", backup_id=backup_id, detail=f"job {job.id}"
        )
        audit.record(db, queued)
        return si.IndexJobOut.of(job)

    return await run_in_threadpool(work)


@router.get("/index/jobs", response_model=si.IndexJobListOut, responses=ERRORS)
async def index_jobs(
    request: Request,
    who: Caller,
    state: Annotated[list[JobState] | None, Query(description="Only jobs in these states.")] = None,
) -> si.IndexJobListOut:
    db = app_state(request).db
    rows = await run_in_threadpool(jobs.list_jobs, db, state)
    return si.IndexJobListOut(jobs=[si.IndexJobOut.of(j) for j in rows])


@router.post("/index/jobs/{job_id}/cancel", response_model=si.IndexJobOut, responses=ERRORS)
async def cancel_index(job_id: IdPath, request: Request, who: Admin) -> si.IndexJobOut:
    """Cancel a job: a queued one at once, a running one at its next batch (its rows are
    removed)."""
    db = app_state(request).db

    def work() -> si.IndexJobOut:
        job = jobs.cancel(db, job_id)
        audit.record(db, audit.Event(who.actor, "index-cancel", job.state, backup_id=job.backup_id))
        return si.IndexJobOut.of(job)

    return await run_in_threadpool(work)
