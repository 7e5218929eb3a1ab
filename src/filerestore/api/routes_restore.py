"""Session routes: mount, unmount, list sessions, browse, file info, resources, cleanup.

Every read from an image runs in the thread pool (``run_in_threadpool``), never on the
event loop; every guest path comes through :mod:`filerestore.api.paths`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from filerestore.api import schemas as s
from filerestore.api.auth import Caller
from filerestore.api.content_types import SNIFF_BYTES, content_type
from filerestore.api.paths import display, request_path, request_paths
from filerestore.api.state import app_state
from filerestore.fs.entry import EntryKind
from filerestore.restore.browse import (
    DEFAULT_PAGE_LIMIT,
    DEFAULT_WALK_DEPTH,
    MAX_PAGE_LIMIT,
    MAX_WALK_DEPTH,
    SortKey,
    dir_totals,
    list_page,
    resolve_root,
    walk_page,
)
from filerestore.restore.stack import Stack
from filerestore.service.principal import Principal
from filerestore.service.resources import resource_figures
from filerestore.service.session import Session

router = APIRouter(prefix="/restore", tags=["restore"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 404, 409, 422, 429, 503, 507)
}
PathParam = Annotated[
    str,
    Query(
        description="Guest path (percent-encoded bytes; use an entry's `path_query`).",
        max_length=8192,
    ),
]
PathsParam = Annotated[
    list[str],
    Query(description="One or several guest paths (percent-encoded bytes).", max_length=1000),
]

T = TypeVar("T")


async def on_stack(
    request: Request, mount_id: str, who: Principal, work: Callable[[Stack], T]
) -> T:
    """``work`` on a reader stack of the session, in the thread pool, the session checked
    out for the caller (one transaction) and given back after."""
    sessions = app_state(request).sessions

    def run() -> T:
        with sessions.checkout(mount_id, who) as checkout:
            return work(checkout.stack)

    return await run_in_threadpool(run)


def mount_out(session: Session) -> s.MountOut:
    return s.MountOut(**s.values_of(session))


@router.post("/mount", status_code=201, response_model=s.MountOut, responses=ERRORS)
async def mount(body: s.MountRequest, request: Request, who: Caller) -> s.MountOut:
    """Open a backup (the session layer writes the mount's audit event)."""
    st = app_state(request)
    session = await run_in_threadpool(st.sessions.mount, body.backup_id, body.volume, who)
    st.metrics.mounts.inc()
    return mount_out(session)


@router.get("/mounts", response_model=s.MountListOut, responses=ERRORS)
async def mounts(request: Request, who: Caller) -> s.MountListOut:
    rows = await run_in_threadpool(app_state(request).sessions.list, who)
    return s.MountListOut(mounts=[mount_out(r) for r in rows])


@router.get("/resources", response_model=s.ResourcesOut, responses=ERRORS)
async def resources(request: Request, who: Caller) -> s.ResourcesOut:
    figures = await run_in_threadpool(resource_figures, app_state(request).sessions)
    return s.ResourcesOut(**s.values_of(figures))


@router.get("/cleanup-status", response_model=s.CleanupStatusOut, responses=ERRORS)
async def cleanup_status(request: Request, who: Caller) -> s.CleanupStatusOut:
    status = app_state(request).cleanup.status()
    return s.CleanupStatusOut(**s.values_of(status, exclude={"last_cleaned"}))


@router.delete("/{mount_id}", status_code=204, responses=ERRORS)
async def unmount(mount_id: str, request: Request, who: Caller) -> Response:
    """End a session (409 while a download holds it)."""
    await run_in_threadpool(app_state(request).sessions.unmount, mount_id, who)
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
    guest = request_path(request)

    def work(stack: Stack) -> s.ListingOut:
        if recursive:
            page = walk_page(stack.fs, guest, cursor, limit, depth)
        else:
            page = list_page(stack.fs, guest, cursor, limit, sort, descending)
        entries = [s.EntryOut.of(e) for e in page.entries]
        return s.ListingOut(
            **s.values_of(page) | {"entries": entries},
            mount_id=mount_id,
            path=display(guest),
            recursive=recursive,
        )

    return await on_stack(request, mount_id, who, work)


@router.get("/{mount_id}/file-info", response_model=s.FileInfoOut, responses=ERRORS)
async def file_info(
    mount_id: str, request: Request, who: Caller, path: PathParam = "/"
) -> s.FileInfoOut:
    guest = request_path(request)

    def work(stack: Stack) -> s.FileInfoOut:
        entry = stack.fs.stat(guest, follow_symlinks=False)
        media = None
        if entry.kind is EntryKind.FILE:
            head = stack.fs.open(guest).read_at(0, min(SNIFF_BYTES, entry.size))
            media = content_type(entry.name, head)
        target_kind = None
        if entry.kind is EntryKind.SYMLINK:
            resolved = resolve_root(stack.fs, guest).entry  # as a download of it would
            target_kind = "dangling" if resolved.kind is EntryKind.SYMLINK else resolved.kind.value
        return s.FileInfoOut.full(entry, media, target_kind)

    return await on_stack(request, mount_id, who, work)


@router.get("/{mount_id}/totals", response_model=s.TotalsOut, responses=ERRORS)
async def totals(
    mount_id: str,
    request: Request,
    who: Caller,
    path: PathsParam,
) -> s.TotalsOut:
    """What a download of these paths would hold: file count and bytes, for progress."""
    guests = request_paths(request)

    def work(stack: Stack) -> s.TotalsOut:
        t = dir_totals(stack.fs, guests)
        counted = [resolve_root(stack.fs, g).entry.path for g in guests]
        paths = [display(p) for p in counted]
        return s.TotalsOut(**s.values_of(t), mount_id=mount_id, paths=paths)

    return await on_stack(request, mount_id, who, work)
