"""``serve --demo``: a state directory with SQLite, the demo repository, an admin token.

The demo repository (a full backup of a GPT disk with an ext4 and an NTFS partition, and an
incremental on top of it) is built from the committed tree under ``demo/`` by the committed
``scripts/build_demo.py``, with real tools as root (mke2fs, mkntfs, ntfs-3g, qemu-img,
qemu-io). Images are not committed, so the build runs once per state directory, the first
time ``serve --demo`` starts from a checkout; ``FILERESTORE_DEMO_REPO`` can point at a
repository built elsewhere instead (an installed package has no checkout to build from).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from filerestore import catalog
from filerestore.db import open_database
from filerestore.errors import (
    MissingExtraError,
    RepositoryExistsError,
    TokenExistsError,
    TokenNotFoundError,
)
from filerestore.service.tokens import create_token, revoke_token
from filerestore.settings import Settings

DEMO_REPO_ENV = "FILERESTORE_DEMO_REPO"
BACKUPS = ("web01/disk0-full.qcow2", "web01/disk0-incr1.qcow2")
CHECKOUT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Demo:
    repository: Path
    token: str
    backup_ids: list[int]


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
        with contextlib.suppress(TokenNotFoundError):
            revoke_token(db, "demo-admin")
        name = "demo-admin"
        for n in range(2, 1000):
            try:
                _, token = create_token(db, name, admin=True)
                break
            except TokenExistsError:
                name = f"demo-admin-{n}"
        return Demo(repo, token, ids)
    finally:
        db.dispose()
