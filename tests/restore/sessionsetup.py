"""A scanned repository for the session and cleanup tests (see tests/catalog/images.py)."""

from __future__ import annotations

from pathlib import Path

from filerestore.catalog import add_repository, list_backups, scan_repository
from filerestore.db import Database
from tests.catalog.images import blank_qcow2, make_repository


def scanned_repository(db: Database, root: Path) -> dict[str, int]:
    """Backup ids by name: full, inc1, inc2, other (ext4 on the whole disk), blank (no fs)."""
    images = make_repository(root)
    images["blank"] = blank_qcow2(root / "vm3" / "blank.qcow2")
    add_repository(db, "main", root)
    scan_repository(db, "main")
    ids = {b.path: b.id for b in list_backups(db)}
    return {name: ids[path.relative_to(root).as_posix()] for name, path in images.items()}
