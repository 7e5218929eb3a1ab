"""Catalog routes: backups (list, one with its chain and volumes, register) and repositories."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from filerestore.api import catalog_ops as c
from filerestore.api import schemas as s
from filerestore.api.auth import Admin, Caller
from filerestore.api.routes_restore import ERRORS
from filerestore.api.state import app_state
from filerestore.db.models import Backup, Repository
from filerestore.errors import FileRestoreError
from filerestore.restore import audit
from filerestore.restore.stack import describe_image

router = APIRouter(tags=["catalog"])


def backup_out(b: Backup, repo: Repository) -> s.BackupOut:
    return s.BackupOut(
        id=b.id,
        repository=repo.name,
        path=b.path,
        vm_name=b.vm_name,
        disk_name=b.disk_name,
        kind=b.kind,
        parent_backup_id=b.parent_backup_id,
        virtual_size=b.virtual_size,
        created_at=b.created_at,
        registered_at=b.registered_at,
        status=c.image_status(b, repo),
    )


@router.get("/backups", response_model=s.BackupListOut, responses=ERRORS)
async def backups(
    request: Request, who: Caller, vm: str | None = None, repository: str | None = None
) -> s.BackupListOut:
    db = app_state(request).db
    rows = await run_in_threadpool(c.backups, db, vm, repository)
    return s.BackupListOut(backups=[backup_out(b, r) for b, r in rows])


@router.get("/backups/{backup_id}", response_model=s.BackupDetailOut, responses=ERRORS)
async def backup(backup_id: int, request: Request, who: Caller) -> s.BackupDetailOut:
    st = app_state(request)

    def work() -> s.BackupDetailOut:
        rows = c.chain(st.db, backup_id)
        b, repo = rows[0]
        volumes: list[s.VolumeOut] = []
        if c.image_status(b, repo) == "available":
            description = describe_image(
                f"{repo.root_path}/{b.path}",
                repository=repo.root_path,
                max_chain_depth=st.settings.max_chain_depth,
            )
            volumes = [
                s.VolumeOut(**{k: getattr(v, k) for k in s.VolumeOut.model_fields})
                for v in description.volumes
            ]
        return s.BackupDetailOut(
            **backup_out(b, repo).model_dump(),
            chain=[backup_out(x, r) for x, r in rows],
            volumes=volumes,
        )

    return await run_in_threadpool(work)


@router.post("/backups", status_code=201, response_model=s.BackupOut, responses=ERRORS)
async def register_backup(body: s.BackupRegister, request: Request, who: Admin) -> s.BackupOut:
    st = app_state(request)

    def work() -> s.BackupOut:
        row = c.register(
            st.db,
            body.repository,
            body.path,
            body.vm_name,
            body.disk_name,
            st.settings.max_chain_depth,
        )
        return backup_out(*c.backup(st.db, row.id))

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
    rows = await run_in_threadpool(c.repositories, app_state(request).db)
    return s.RepositoryListOut(
        repositories=[
            s.RepositoryOut(
                name=r.name,
                kind=r.kind,
                root_path=r.root_path,
                enabled=r.enabled,
                available=c.repository_available(r),
                created_at=r.created_at,
            )
            for r in rows
        ]
    )
