"""Scan a repository: register every disk image under its root, idempotently.

Not every file is a backup. An image is a QCOW2, VMDK, VHD or VHDX file (by its magic
numbers, whatever its name: the image layer's is_image_file) or a raw disk image, which has
no signature and is recognised by its name only (``*.raw``, ``*.img``, the image layer's
RAW_SUFFIXES); an empty file is never an image. Other files (a README, a failed backup's
empty leftover) are skipped silently: they are not errors. Every candidate is opened through
the repository's store (no link followed out of the root, no FIFO opened), and probed with
the image layer's chain rules before anything is written; a candidate that fails (a hostile
or broken chain) is reported and skipped rather than stopping the scan. Files that are parts
of a disk (a VMDK's split or flat extents, named by its descriptor; a QCOW2 image's external
data file) are not backups of their own: a file any probed chain lists among its parts is
neither registered nor reported. Rows are written in one transaction, parents first (shorter
chains first), so an incremental finds its parent's id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from filerestore.catalog.backups import Probed, probe, upsert
from filerestore.catalog.repositories import get_repository, list_repositories, require_available
from filerestore.db.engine import Database
from filerestore.errors import FileRestoreError
from filerestore.image import (
    DEFAULT_MAX_CHAIN_DEPTH,
    DEFAULT_METADATA_BUDGET,
    RAW_SUFFIXES,
    is_image_file,
)
from filerestore.source import LocalStore


@dataclass
class ScanReport:
    repository: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    #: (relative path, reason) of each image file that could not be registered
    errors: list[tuple[str, str]] = field(default_factory=list)


def is_image(store: LocalStore, rel: str) -> bool:
    """Whether the file ``rel`` of ``store`` is a disk image by its signature (its first
    bytes, or a fixed VHD's footer in its last 512)."""
    try:
        with store.open(rel) as f:
            if f.size == 0:
                return False
            head = f.pread(0, min(64, f.size), "signature")
            tail = f.pread(max(0, f.size - 512), min(512, f.size), "footer")
            return is_image_file(head, tail)
    except FileRestoreError:
        return False  # refused, vanished or unreadable: not registered by a scan


def find_images(root: Path) -> list[str]:
    """Relative paths of the disk images under ``root`` (see the module docstring); links
    are not followed while listing, and every candidate is opened through the store."""
    found = []
    with LocalStore(root) as store:
        for dirpath, dirnames, filenames in os.walk(store.root):
            dirnames.sort()
            for name in sorted(filenames):
                rel = (Path(dirpath) / name).relative_to(store.root).as_posix()
                if is_image(store, rel) or (name.endswith(RAW_SUFFIXES) and _nonempty(store, rel)):
                    found.append(rel)
    return found


def _nonempty(store: LocalStore, rel: str) -> bool:
    try:
        return store.stat(rel).stat.st_size > 0
    except FileRestoreError:
        return False


def scan_repository(
    db: Database,
    name: str,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> ScanReport:
    repo = get_repository(db, name)
    require_available(repo)
    root = Path(repo.root_path)
    report = ScanReport(repository=name)
    probed: list[Probed] = []
    for rel in find_images(root):
        try:
            probed.append(probe(root, rel, max_chain_depth, metadata_budget))
        except FileRestoreError as exc:
            report.errors.append((rel, str(exc)))
    parts = {part for item in probed for link in item.chain for part in link.parts}
    probed = [p for p in probed if p.path not in parts]  # a disk's parts are not backups
    report.errors = [(rel, why) for rel, why in report.errors if rel not in parts]
    probed.sort(key=lambda p: (len(p.chain), p.path))
    with db.write(lock=f"catalog:{repo.id}") as session:
        for item in probed:
            _, inserted = upsert(session, repo.id, root, item)
            (report.added if inserted else report.updated).append(item.path)
    return report


def scan_all(
    db: Database,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> list[ScanReport]:
    """Scan every enabled repository; an unavailable one is reported, not fatal."""
    reports = []
    for repo in list_repositories(db):
        if not repo.enabled:
            continue
        try:
            reports.append(scan_repository(db, repo.name, max_chain_depth, metadata_budget))
        except FileRestoreError as exc:
            report = ScanReport(repository=repo.name)
            report.errors.append(("", str(exc)))
            reports.append(report)
    return reports
