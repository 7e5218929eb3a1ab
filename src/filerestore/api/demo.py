"""``serve --demo``: a state directory with SQLite, the demo repository, an admin token.

The demo repository (a full backup of a GPT disk with an ext4 and an NTFS partition, and an
incremental on top of it) is built from the committed tree under ``demo/`` by the committed
``scripts/build_demo.py``, with real tools as root (mke2fs, mkntfs, ntfs-3g, qemu-img,
qemu-io). Images are not committed, so the build runs once per state directory, the first
time ``serve --demo`` starts from a checkout; ``FILERESTORE_DEMO_REPO`` can point at a
repository built elsewhere instead (an installed package has no checkout to build from).

The admin token is made once per state directory and kept there (``demo-admin.token``,
mode 0600, like an SSH key): the next ``serve --demo`` prints the same token, so a tab that
signed in with it stays signed in. A kept token that no longer works (revoked, or the
database was replaced) is replaced by a new one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from filerestore import catalog
from filerestore.db import Database, open_database
from filerestore.errors import (
    AuthenticationError,
    MissingExtraError,
    RepositoryExistsError,
    TokenExistsError,
)
from filerestore.index.jobs import enqueue_unindexed
from filerestore.service.tokens import check_token, create_token
from filerestore.settings import Settings

DEMO_REPO_ENV = "FILERESTORE_DEMO_REPO"
BACKUPS = ("web01/disk0-full.qcow2", "web01/disk0-incr1.qcow2")
CHECKOUT = Path(__file__).resolve().parents[3]
TOKEN_FILE = "demo-admin.token"  # noqa: S105 - a file name


@dataclass(frozen=True)
class Demo:
    repository: Path
    token: str
    backup_ids: list[int]
    #: the token was kept from an earlier run (False: made now)
    reused: bool = False


def demo_repository(state_dir: Path) -> Path:
    """The demo repository: given, already built, or built now from the checkout."""
    given = os.environ.get(DEMO_REPO_ENV)
    if given:
        return Path(given)
    dest = state_dir / "demo-repo"
    if all((dest / b).is_file() for b in BACKUPS):
        return dest
    script = CHECKOUT / "scripts" / "build_demo.py"
    if not script.is_file() or not (CHECKOUT / "demo" / "source").is_dir():
        raise MissingExtraError(
            f"the demo repository is not built and no checkout is here to build it from; "
            f"run scripts/build_demo.py DEST from a checkout and set {DEMO_REPO_ENV}=DEST"
        )
    subprocess.run([sys.executable, str(script), str(dest)], check=True)
    return dest


def prepare_demo(settings: Settings) -> Demo:
    state_dir = settings.state_dir.expanduser()
    state_dir.mkdir(parents=True, exist_ok=True)
    repo = demo_repository(state_dir)
    db = open_database(settings)
    try:
        with contextlib.suppress(RepositoryExistsError):
            catalog.add_repository(db, "demo", repo)
        ids = [
            catalog.register_backup(db, "demo", rel, vm_name="web01", disk_name="disk0").id
            for rel in BACKUPS
        ]
        if settings.index_on_register:  # the service's runner indexes them: search works
            enqueue_unindexed(db, ids, requested_by="demo")
        kept = _kept_token(db, state_dir / TOKEN_FILE)
        if kept is not None:
            return Demo(repo, kept, ids, reused=True)
        token = _new_token(db)
        _keep(state_dir / TOKEN_FILE, token)
        return Demo(repo, token, ids)
    finally:
        db.dispose()


def _kept_token(db: Database, path: Path) -> str | None:
    """The token an earlier run kept, if it still signs in as an admin."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        info = check_token(db, token)
    except AuthenticationError:
        return None
    return token if info.admin else None


def _new_token(db: Database) -> str:
    name = "demo-admin"
    for n in range(2, 1000):
        try:
            return create_token(db, name, admin=True)[1]
        except TokenExistsError:  # an earlier demo's token, whose secret was not kept
            name = f"demo-admin-{n}"
    raise TokenExistsError("no free demo-admin-N token name")


def _keep(path: Path, token: str) -> None:
    """Write ``token`` readable by its owner only, replacing any older file whole."""
    part = path.with_name(path.name + ".part")
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # whatever the umask
        out.write(token + "\n")
    part.replace(path)
