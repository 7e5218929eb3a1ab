"""Catalog routes: backups (list, one with its chain and volumes, register) and repositories."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from filerestore import catalog
from filerestore.api import schemas as s
from filerestore.api.auth import Admin, Caller
from filerestore.api.routes_restore import ERRORS
from filerestore.api.state import app_state
from filerestore.errors import FileRestoreError
from filerestore.restore.descriptions import DESCRIPTIONS
from filerestore.service import audit

router = APIRouter(tags=["catalog"])
MAX_CHAIN = 256


@router.get("/backups", response_model=s.BackupListOut, responses=ERRORS)
async def backups(
    request: Request, who: Caller, vm: str | None = None, repository: str | None = None
) -> s.BackupListOut:
    db = app_state(request).db
    rows = await run_in_threadpool(catalog.list_backups, db, repository)
    return s.BackupListOut(
        backups=[s.BackupOut.of(b) for b in rows if vm is None or b.vm_name == vm]
    )


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
            volumes = [s.VolumeOut(**s.values_of(v)) for v in description.volumes]
        return s.BackupDetailOut(
            **s.BackupOut.of(top).model_dump(),
            chain=[s.BackupOut.of(x) for x in chain],
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
        return s.BackupOut.of(info)

    try:
        out = await run_in_threadpool(work)
    except FileRestoreError as exc:
        refused = audit.Event(
            who.actor, "register", "failed", path=body.path, detail=f"{exc.code}: {exc}"
        )
        await run_in_threadpool(st.sessions.audit.record, refused)
        raise
    done = audit.Event(who.actor, "register", "ok", backup_id=out.id, path=out.path)
    await run_in_threadpool(st.sessions.audit.record, done)
    return out


@router.get("/repositories", response_model=s.RepositoryListOut, responses=ERRORS)
async def repositories(request: Request, who: Caller) -> s.RepositoryListOut:
    def work() -> s.RepositoryListOut:
        found = catalog.repositories_with_availability(app_state(request).db)
        out = [s.RepositoryOut.of(r, a) for r, a in found]
        if not who.admin:  # no host paths for a non-admin (issue 8, defect 8)
            redact = app_state(request).redact
            out = [
                o.model_copy(
                    update={
                        "root_path": f"<repository {o.name}>",
                        "reason": redact(o.reason) if o.reason else o.reason,
                    }
                )
                for o in out
            ]
        return s.RepositoryListOut(repositories=out)

    return await run_in_threadpool(work)
