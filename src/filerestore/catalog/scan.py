"""Scan a repository: register every QCOW2 image under its root, idempotently.

Images are recognised by the QCOW2 magic, never by file name. Each is probed with the image
layer's chain rules before anything is written, and a file that fails (a hostile or broken
chain) is reported and skipped rather than stopping the scan. Rows are written in one
transaction, parents first (shorter chains first), so an incremental finds its parent's id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from filerestore.catalog.backups import Probed, probe, upsert
from filerestore.catalog.repositories import get_repository, list_repositories, require_available
from filerestore.db.engine import Database
from filerestore.errors import FileRestoreError
from filerestore.image import DEFAULT_MAX_CHAIN_DEPTH

QCOW2_MAGIC = b"QFI\xfb"  # QEMU docs/interop/qcow2.txt, header byte 0


@dataclass
class ScanReport:
    repository: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    #: (relative path, reason) of each QCOW2 file that could not be registered
    errors: list[tuple[str, str]] = field(default_factory=list)


def is_qcow2(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == QCOW2_MAGIC
    except OSError:
        return False


def find_images(root: Path) -> list[str]:
    """Relative paths of the QCOW2 files under ``root``; symbolic links are not followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not path.is_symlink() and path.is_file() and is_qcow2(path):
                found.append(path.relative_to(root).as_posix())
    return found


def scan_repository(
    db: Database, name: str, max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH
) -> ScanReport:
    repo = get_repository(db, name)
    require_available(repo)
    root = Path(repo.root_path)
    report = ScanReport(repository=name)
    probed: list[Probed] = []
    for rel in find_images(root):
        try:
            probed.append(probe(root, rel, max_chain_depth))
        except (FileRestoreError, OSError) as exc:
            report.errors.append((rel, str(exc)))
    probed.sort(key=lambda p: (len(p.chain), p.path))
    with db.write(lock=f"catalog:{repo.id}") as session:
        for item in probed:
            _, inserted = upsert(session, repo.id, root, item)
            (report.added if inserted else report.updated).append(item.path)
    return report


def scan_all(db: Database, max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH) -> list[ScanReport]:
    """Scan every enabled repository; an unavailable one is reported, not fatal."""
    reports = []
    for repo in list_repositories(db):
        if not repo.enabled:
            continue
        try:
            reports.append(scan_repository(db, repo.name, max_chain_depth))
        except FileRestoreError as exc:
            report = ScanReport(repository=repo.name)
            report.errors.append(("", str(exc)))
            reports.append(report)
    return reports
