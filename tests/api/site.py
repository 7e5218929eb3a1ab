"""A real server of its own for a test: one worker over a repository holding the restore
tests' ext4 image as a raw disk (``disk.img``), with a user and an admin token."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import select

from filerestore import catalog
from filerestore.db.engine import Database
from filerestore.db.migrate import ensure_schema
from filerestore.db.models import AuditEvent
from filerestore.service.tokens import create_token
from filerestore.settings import load_settings
from tests.api.server import Server, api_client, open_session
from tests.imagebuild.restore_tree import restore_image

API = "/api/v1"


@dataclass
class Site:
    server: Server
    log: Path
    state: Path
    db_url: str
    token: str
    admin: str
    backup_id: int

    def client(self, token: str | None = None) -> httpx.Client:
        return api_client(self.server.url, token or self.token)

    def mount(self) -> str:
        with self.client() as c:
            return str(open_session(c, self.backup_id)["mount_id"])

    def rows(self) -> list[AuditEvent]:
        db = Database(self.db_url)
        try:
            with db.read() as s:
                rows = list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
                s.expunge_all()
                return rows
        finally:
            db.dispose()


def prepare(base: Path, db_url: str | None = None) -> tuple[Path, str, str, str, int]:
    """A repository with the restore tests' ext4 image as a raw disk, a state directory and
    a schema: (state, database url, user token, admin token, backup id)."""
    repo = base / "repo"
    repo.mkdir()
    os.link(restore_image(), repo / "disk.img")
    state = base / "state"
    state.mkdir()
    url = db_url or load_settings(state_dir=state).effective_database_url
    db = Database(url)
    try:
        ensure_schema(db)
        catalog.add_repository(db, "main", repo)
        backup_id = catalog.register_backup(db, "main", "disk.img").id
        user = create_token(db, f"user-{uuid.uuid4().hex[:6]}")[1]
        admin = create_token(db, f"admin-{uuid.uuid4().hex[:6]}", admin=True)[1]
    finally:
        db.dispose()
    return state, url, user, admin, backup_id


def start(base: Path, name: str, env: dict[str, str], db_url: str | None = None) -> Site:
    here = base / name
    here.mkdir()
    state, url, user, admin, backup_id = prepare(here, db_url)
    full_env = {"FILERESTORE_STATE_DIR": str(state), **env}
    if db_url:
        full_env["FILERESTORE_DATABASE_URL"] = db_url
    log = here / "server.log"
    server = Server(full_env, workers=1, log=log).start()
    return Site(server, log, state, url, user, admin, backup_id)


@contextlib.contextmanager
def running(base: Path, name: str, env: dict[str, str]) -> Iterator[Site]:
    """:func:`start`'s site for the block (a module fixture's), its server stopped after."""
    site = start(base, name, env)
    try:
        yield site
    finally:
        site.server.stop()
