"""Scanning a repository built for a test: added, scanned with no errors, listed by path."""

from __future__ import annotations

from pathlib import Path

from filerestore.catalog import BackupInfo, add_repository, list_backups, scan_repository
from filerestore.db.engine import Database


def scan_new_repository(db: Database, root: Path) -> dict[str, BackupInfo]:
    """``root`` added as the repository "main" and scanned without errors: its backups by path."""
    add_repository(db, "main", root)
    report = scan_repository(db, "main")
    assert report.errors == []
    return {b.path: b for b in list_backups(db)}


def assert_rescan_adds_nothing(db: Database, found: dict[str, BackupInfo]) -> None:
    """A second scan of "main" adds no backup and updates every one ``found``."""
    again = scan_repository(db, "main")
    assert again.added == [] and sorted(again.updated) == sorted(found)
