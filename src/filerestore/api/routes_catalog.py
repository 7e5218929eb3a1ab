"""Catalog routes: backups (list, one with its chain and volumes, register) and repositories."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from filerestore import catalog
from filerestore.api import schemas as s
from filerestore.api.auth import Admin, Caller
from filerestore.api.routes_restore import ERRORS
from filerestore.api.state import AppState, app_state
from filerestore.errors import FileRestoreError
from filerestore.index.jobs import enqueue_unindexed, index_states
from filerestore.restore.descriptions import DESCRIPTIONS
from filerestore.service import audit

router = APIRouter(tags=["catalog"])
T = TypeVar("T")
MAX_CHAIN = 256


@router.get("/backups", response_model=s.BackupListOut, responses=ERRORS)
async def backups(
    request: Request, who: Caller, vm: str | None = None, repository: str | None = None
) -> s.BackupListOut:
    st = app_state(request)

    def work() -> s.BackupListOut:
        rows = [
            b
            for b in catalog.list_backups(st.db, repository, st.sessions.stores)
            if vm is None or b.vm_name == vm
        ]
        states = index_states(st.db, [b.id for b in rows])
        return s.BackupListOut(
            backups=[
                s.BackupOut.of(b).model_copy(update={"index_state": states[b.id].state})
                for b in rows
            ]
        )

    return await run_in_threadpool(work)


@router.get("/backups/{backup_id}", response_model=s.BackupDetailOut, responses=ERRORS)
async def backup(
    backup_id: Annotated[int, Path(ge=1, le=s.MAX_ID)], request: Request, who: Caller
) -> s.BackupDetailOut:
    """A backup with its backing chain (top first) and its volumes."""
    st = app_state(request)
    stores = st.sessions.stores

    def work() -> s.BackupDetailOut:
        chain = [catalog.get_backup(st.db, backup_id, stores)]
        while chain[-1].parent_backup_id is not None and len(chain) < MAX_CHAIN:
            chain.append(catalog.get_backup(st.db, chain[-1].parent_backup_id, stores))
        top = chain[0]
        volumes: list[s.VolumeOut] = []
        if top.status == "available":
            # kept per process while the chain's files are unchanged (no reopen per request)
            repository = catalog.get_repository(st.db, top.repository)
            with stores.opened(repository) as store:
                description = DESCRIPTIONS.describe(
                    top.repository_root,
                    top.path,
                    store=store,
                    max_chain_depth=st.settings.max_chain_depth,
                    metadata_budget=st.settings.image_metadata_budget,
                )
            volumes = [s.VolumeOut(**s.values_of(v)) for v in description.volumes]
        state = index_states(st.db, [top.id])[top.id].state
        return s.BackupDetailOut(
            **s.BackupOut.of(top).model_copy(update={"index_state": state}).model_dump(),
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
            stores=st.sessions.stores,
        )
        if st.settings.index_on_register:
            enqueue_unindexed(st.db, [info.id], requested_by=who.actor)
        return s.BackupOut.of(info)

    return await _audited(
        st,
        audit.Event(who.actor, "register", "failed", path=body.path),
        work,
        lambda out: audit.Event(who.actor, "register", "ok", backup_id=out.id, path=out.path),
    )


@router.get("/repositories", response_model=s.RepositoryListOut, responses=ERRORS)
async def repositories(request: Request, who: Caller) -> s.RepositoryListOut:
    st = app_state(request)

    def work() -> s.RepositoryListOut:
        found = catalog.repositories_with_availability(st.db, st.sessions.stores)
        out = [s.RepositoryOut.of(r, a) for r, a in found]
        if not who.admin:  # no host paths or addresses for a non-admin (issue 8, defect 8)
            out = [
                o.model_copy(
                    update={
                        "root_path": f"<repository {o.name}>",
                        "mount_source": None,  # a share's server and export
                        "endpoint": None,  # an object store's address
                        "region": None,
                        "reason": st.redact(o.reason) if o.reason else o.reason,
                    }
                )
                for o in out
            ]
        return s.RepositoryListOut(repositories=out)

    return await run_in_threadpool(work)


@router.post("/repositories", status_code=201, response_model=s.RepositoryOut, responses=ERRORS)
async def add_repository(body: s.RepositoryAdd, request: Request, who: Admin) -> s.RepositoryOut:
    """Add a repository (admin tokens only): a host directory (kind local, or nfs/cifs for a
    mounted share), or ``s3://BUCKET/PREFIX`` with its endpoint. An S3 repository's
    credentials are each host's settings, never sent here; the bucket must answer with them."""
    st = app_state(request)

    def work() -> s.RepositoryOut:
        repo = catalog.add_declared(st.db, body, stores=st.sessions.stores)
        return s.RepositoryOut.of(repo, catalog.availability(repo, st.sessions.stores))

    done = audit.Event(who.actor, "repository_add", "ok", path=body.path, detail=body.name)
    return await _audited(
        st,
        audit.Event(who.actor, "repository_add", "failed", path=body.path),
        work,
        lambda _: done,
    )


async def _audited(
    st: AppState, refused: audit.Event, work: Callable[[], T], done: Callable[[T], audit.Event]
) -> T:
    """Run an admin's change in the thread pool and write its audit row: ``done(result)``, or
    ``refused`` with the error's code and message as its detail."""
    try:
        out = await run_in_threadpool(work)
    except FileRestoreError as exc:
        failed = dataclasses.replace(refused, detail=f"{exc.code}: {exc}")
        await run_in_threadpool(st.sessions.audit.record, failed)
        raise
    await run_in_threadpool(st.sessions.audit.record, done(out))
    return out
