"""Session routes: mount, unmount, list sessions, browse, file info, resources, cleanup.

Every read from an image runs in the thread pool (``run_in_threadpool``), never on the
event loop; every guest path comes through :mod:`filerestore.api.paths`.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from filerestore.api import schemas as s
from filerestore.api.auth import Caller
from filerestore.api.content_types import SNIFF_BYTES, content_type
from filerestore.api.housekeeping import rss_bytes
from filerestore.api.paths import display, request_path
from filerestore.api.state import app_state
from filerestore.db.models import RestoreMount
from filerestore.errors import FileRestoreError
from filerestore.fs.entry import EntryKind
from filerestore.restore import audit
from filerestore.restore.browse import (
    DEFAULT_PAGE_LIMIT,
    DEFAULT_WALK_DEPTH,
    MAX_PAGE_LIMIT,
    MAX_WALK_DEPTH,
    SortKey,
    list_page,
    walk_page,
)

router = APIRouter(prefix="/restore", tags=["restore"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 404, 409, 422, 503)
}
PathParam = Annotated[
    str,
    Query(
        description="Guest path (percent-encoded bytes; use an entry's `path_query`).",
        max_length=8192,
    ),
]


def mount_out(row: RestoreMount) -> s.MountOut:
    return s.MountOut(
        mount_id=row.id,
        backup_id=row.backup_id,
        volume=row.volume,
        mount_path=row.mount_path,
        nbd_device=row.nbd_device,
        filesystem_type=row.filesystem_type,
        status=row.status,
        error=row.error,
        owner=row.owner,
        created_at=row.created_at,
        last_accessed_at=row.last_accessed_at,
        expires_at=row.expires_at,
    )


@router.post("/mount", status_code=201, response_model=s.MountOut, responses=ERRORS)
async def mount(body: s.MountRequest, request: Request, who: Caller) -> s.MountOut:
    st = app_state(request)
    try:
        row = await run_in_threadpool(st.backend.mount, body.backup_id, body.volume, who)
    except FileRestoreError as exc:
        await run_in_threadpool(
            audit.record,
            st.db,
            who.actor,
            "mount",
            "failed",
            backup_id=body.backup_id,
            detail=f"{exc.code}: {exc}",
        )
        raise
    st.metrics.mounts.inc()
    await run_in_threadpool(
        audit.record, st.db, who.actor, "mount", "ok", backup_id=row.backup_id, mount_id=row.id
    )
    return mount_out(row)


@router.get("/mounts", response_model=s.MountListOut, responses=ERRORS)
async def mounts(request: Request, who: Caller) -> s.MountListOut:
    rows = await run_in_threadpool(app_state(request).backend.mounts, who)
    return s.MountListOut(mounts=[mount_out(r) for r in rows])


@router.get("/resources", response_model=s.ResourcesOut, responses=ERRORS)
async def resources(request: Request, who: Caller) -> s.ResourcesOut:
    st = app_state(request)
    used = await run_in_threadpool(st.backend.live_sessions)
    return s.ResourcesOut(
        sessions_used=used,
        sessions_limit=st.settings.max_sessions,
        downloads_in_progress=st.backend.downloads,
        readers_open=st.backend.stacks.open_count,
        memory_rss_bytes=rss_bytes(),
        worker_pid=os.getpid(),
    )


@router.get("/cleanup-status", response_model=s.CleanupStatusOut, responses=ERRORS)
async def cleanup_status(request: Request, who: Caller) -> s.CleanupStatusOut:
    state = app_state(request).cleanup.state
    with state.lock:
        return s.CleanupStatusOut(
            running=state.running,
            interval_seconds=state.interval,
            last_run=state.last_run,
            next_run=state.next_run,
            sessions_cleaned=state.sessions_cleaned,
            failures=state.failures,
            last_error=state.last_error,
        )


@router.delete("/{mount_id}", status_code=204, responses=ERRORS)
async def unmount(mount_id: str, request: Request, who: Caller) -> Response:
    st = app_state(request)
    row = await run_in_threadpool(st.backend.unmount, mount_id, who)
    await run_in_threadpool(
        audit.record, st.db, who.actor, "unmount", "ok", backup_id=row.backup_id, mount_id=row.id
    )
    return Response(status_code=204)


@router.get("/{mount_id}/files", response_model=s.ListingOut, responses=ERRORS)
async def files(
    mount_id: str,
    request: Request,
    who: Caller,
    path: PathParam = "/",
    recursive: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    depth: Annotated[int, Query(ge=1, le=MAX_WALK_DEPTH)] = DEFAULT_WALK_DEPTH,
    sort: SortKey = SortKey.NAME,
    descending: bool = False,
) -> s.ListingOut:
    st = app_state(request)
    guest = request_path(request)
    opened = await run_in_threadpool(st.backend.opened, mount_id, who)

    def work() -> s.ListingOut:
        with st.backend.stack(opened) as stack:
            if recursive:
                page = walk_page(stack.fs, guest, cursor, limit, depth)
            else:
                page = list_page(stack.fs, guest, cursor, limit, sort, descending)
            return s.ListingOut(
                mount_id=mount_id,
                path=display(guest),
                recursive=recursive,
                entries=[s.EntryOut.of(e) for e in page.entries],
                next_cursor=page.next_cursor,
                total=page.total,
            )

    return await run_in_threadpool(work)


@router.get("/{mount_id}/file-info", response_model=s.FileInfoOut, responses=ERRORS)
async def file_info(
    mount_id: str, request: Request, who: Caller, path: PathParam = "/"
) -> s.FileInfoOut:
    st = app_state(request)
    guest = request_path(request)
    opened = await run_in_threadpool(st.backend.opened, mount_id, who)

    def work() -> s.FileInfoOut:
        with st.backend.stack(opened) as stack:
            entry = stack.fs.stat(guest, follow_symlinks=False)
            media = None
            if entry.kind is EntryKind.FILE:
                head = stack.fs.open(guest).read_at(0, min(SNIFF_BYTES, entry.size))
                media = content_type(entry.name, head)
            return s.FileInfoOut.full(entry, media)

    return await run_in_threadpool(work)
