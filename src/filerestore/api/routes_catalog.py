"""Catalog routes: backups (list, one with its chain and volumes, register) and repositories."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from filerestore import catalog
from filerestore.api import schemas as s
from filerestore.api.auth import Admin, Caller
from filerestore.api.paths import display
from filerestore.api.routes_restore import ERRORS
from filerestore.api.state import app_state
from filerestore.catalog import BackupInfo
from filerestore.errors import FileRestoreError
from filerestore.index.jobs import enqueue_unindexed, index_states
from filerestore.restore import audit
from filerestore.restore.descriptions import DESCRIPTIONS

router = APIRouter(tags=["catalog"])
MAX_CHAIN = 256


def backup_out(b: BackupInfo) -> s.BackupOut:
    return s.BackupOut(
        id=b.id,
        repository=b.repository,
        path=display(b.path),  # a host file name need not be UTF-8
        vm_name=b.vm_name,
        disk_name=b.disk_name,
        kind=b.kind,
        parent_backup_id=b.parent_backup_id,
        virtual_size=b.virtual_size,
        created_at=b.created_at,
        registered_at=b.registered_at,
        status=b.status,
    )


@router.get("/backups", response_model=s.BackupListOut, responses=ERRORS)
async def backups(
    request: Request, who: Caller, vm: str | None = None, repository: str | None = None
) -> s.BackupListOut:
    db = app_state(request).db

    def work() -> s.BackupListOut:
        rows = [b for b in catalog.list_backups(db, repository) if vm is None or b.vm_name == vm]
        states = index_states(db, [b.id for b in rows])
        return s.BackupListOut(
            backups=[
                backup_out(b).model_copy(update={"index_state": states[b.id].state}) for b in rows
            ]
        )

    return await run_in_threadpool(work)


@router.get("/backups/{backup_id}", response_model=s.BackupDetailOut, responses=ERRORS)
async def backup(
    backup_id: Annotated[int, Path(ge=1, le=s.MAX_ID)], request: Request, who: Caller
) -> s.BackupDetailOut:
    """A backup with its backing chain (top first) and its volumes."""
    st = app_state(request)

    def work() -> s.BackupDetailOut:
        chain = [catalog.get_backup(st.db, backup_id)]
        while chain[-1].parent_backup_id is not None and len(chain) < MAX_CHAIN:
            chain.append(catalog.get_backup(st.db, chain[-1].parent_backup_id))
        top = chain[0]
        volumes: list[s.VolumeOut] = []
        if top.status == "available":
            # kept per process while the chain's files are unchanged (no reopen per request)
            description = DESCRIPTIONS.describe(
                top.repository_root,
                top.path,
                max_chain_depth=st.settings.max_chain_depth,
                metadata_budget=st.settings.image_metadata_budget,
            )
            volumes = [
                s.VolumeOut(**{k: getattr(v, k) for k in s.VolumeOut.model_fields})
                for v in description.volumes
            ]
        state = index_states(st.db, [top.id])[top.id].state
        return s.BackupDetailOut(
            **backup_out(top).model_copy(update={"index_state": state}).model_dump(),
            chain=[backup_out(x) for x in chain],
            volumes=volumes,
        )

    return await run_in_threadpool(work)


@router.post("/backups", status_code=201, response_model=s.BackupOut, responses=ERRORS)
async def register_backup(body: s.BackupRegister, request: Request, who: Admin) -> s.BackupOut:
    """Register one image of a repository (admin tokens only)."""
    st = app_state(request)

    def work() -> s.BackupOut:
        info = catalog.register_backup(
            st.db,
            body.repository,
            body.path,
            vm_name=body.vm_name,
            disk_name=body.disk_name,
            max_chain_depth=st.settings.max_chain_depth,
            metadata_budget=st.settings.image_metadata_budget,
        )
        if st.settings.index_on_register:
            enqueue_unindexed(st.db, [info.id], requested_by=who.actor)
        return backup_out(info)

    try:
        out = await run_in_threadpool(work)
    except FileRestoreError as exc:
        await run_in_threadpool(
            audit.record,
            st.db,
            who.actor,
            "register",
            "failed",
            path=body.path,
            detail=f"{exc.code}: {exc}",
        )
        raise
    await run_in_threadpool(
        audit.record, st.db, who.actor, "register", "ok", backup_id=out.id, path=out.path
    )
    return out


@router.get("/repositories", response_model=s.RepositoryListOut, responses=ERRORS)
async def repositories(request: Request, who: Caller) -> s.RepositoryListOut:
    def work() -> s.RepositoryListOut:
        out = []
        for r in catalog.list_repositories(app_state(request).db):
            availability = catalog.check_availability(r.kind, r.root_path)
            out.append(
                s.RepositoryOut(
                    name=r.name,
                    kind=r.kind,
                    root_path=display(r.root_path),
                    enabled=r.enabled,
                    available=availability.available,
                    reason=availability.reason or None,
                    created_at=r.created_at,
                )
            )
        return s.RepositoryListOut(repositories=out)

    return await run_in_threadpool(work)
