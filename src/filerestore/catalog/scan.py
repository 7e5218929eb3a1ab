"""Scan a repository: register every disk image under its root (or prefix), idempotently.

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

A local repository's files are found by walking its root; an S3 repository's by listing the
objects under its prefix (one request per 1,000 keys). Both are then read through the
repository's store, with the same rules.

Layouts and names. Any tree of directories is scanned; what names a backup's VM and disk:

- ``ROOT/VM/DISK.qcow2`` (or ``.vmdk``, ``.vhd``, ``.vhdx``, ``.raw``, ``.img``): a full
  backup; the VM is the directory holding the file, the disk the file name without its
  suffix. Deeper trees (``ROOT/site/VM/DISK.qcow2``) name the VM by the nearest directory.
- ``ROOT/DISK.qcow2``: a full backup of no named VM.
- an incremental, wherever it lies and whatever it is called (``VM/DISK-incr3.qcow2``,
  ``VM/incr/2026-11-01.qcow2``): one more backup of its chain's disk, named as its parent
  and so as the full backup its chain leads to; the chain, not the file name, groups it.
- names given when registering (``register_backup``) are kept by later scans.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filerestore.catalog.backups import Probed, probe, upsert
from filerestore.catalog.repositories import available_repository, list_repositories
from filerestore.catalog.stores import Stores
from filerestore.db.engine import Database
from filerestore.errors import FileRestoreError
from filerestore.image import (
    DEFAULT_MAX_CHAIN_DEPTH,
    DEFAULT_METADATA_BUDGET,
    RAW_SUFFIXES,
    is_image_file,
)
from filerestore.source import LocalStore, S3Store, Store


@dataclass
class ScanReport:
    repository: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    #: (relative path, reason) of each image file that could not be registered
    errors: list[tuple[str, str]] = field(default_factory=list)


def is_image(store: Store, rel: str) -> bool:
    """Whether the file ``rel`` of ``store`` is a disk image by its signature (its first
    bytes, or a fixed VHD's footer in its last 512)."""
    try:
        f = store.open(rel)
        try:
            if f.size == 0:
                return False
            head = f.pread(0, min(64, f.size), "signature")
            tail = f.pread(max(0, f.size - 512), min(512, f.size), "footer")
            return is_image_file(head, tail)
        finally:
            f.close()
    except FileRestoreError:
        return False  # refused, vanished or unreadable: not registered by a scan


def _walk(store: LocalStore) -> Iterator[tuple[str, int]]:
    """(name, size) of every file under the store's root, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(store.root):
        dirnames.sort()
        for name in sorted(filenames):
            rel = (Path(dirpath) / name).relative_to(store.root).as_posix()
            yield rel, _size(store, rel)


def _listed(store: S3Store) -> Iterator[tuple[str, int]]:
    for meta in sorted(store.list(), key=lambda m: m.key):
        yield meta.key, meta.size


def _images(store: Store, files: Iterable[tuple[str, int]]) -> list[str]:
    return [
        rel
        for rel, size in files
        if size > 0 and (is_image(store, rel) or rel.endswith(RAW_SUFFIXES))
    ]


def _size(store: LocalStore, rel: str) -> int:
    try:
        return store.stat(rel).stat.st_size
    except FileRestoreError:
        return 0  # refused or gone: never a candidate


def scan_repository(
    db: Database,
    name: str,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
    stores: Stores | None = None,
) -> ScanReport:
    repo, stores = available_repository(db, name, stores)
    report = ScanReport(repository=name)
    probed: list[Probed] = []
    with stores.opened(repo) as store:
        for rel in _find(store):
            try:
                probed.append(probe(store, rel, max_chain_depth, metadata_budget))
            except FileRestoreError as exc:
                report.errors.append((rel, str(exc)))
    parts = {part for item in probed for link in item.chain for part in link.parts}
    probed = [p for p in probed if p.path not in parts]  # a disk's parts are not backups
    report.errors = [(rel, why) for rel, why in report.errors if rel not in parts]
    probed.sort(key=lambda p: (len(p.chain), p.path))
    with db.write(lock=f"catalog:{repo.id}") as session:
        for item in probed:
            _, inserted = upsert(session, repo.id, item)
            (report.added if inserted else report.updated).append(item.path)
    return report


def _find(store: Store) -> list[str]:
    """The disk images of the repository: its files walked, or its objects listed."""
    if isinstance(store, S3Store):
        return _images(store, _listed(store))
    assert isinstance(store, LocalStore)
    return _images(store, _walk(store))


def scan_all(
    db: Database,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
    stores: Stores | None = None,
) -> list[ScanReport]:
    """Scan every enabled repository; an unavailable one is reported, not fatal."""
    reports = []
    for repo in list_repositories(db):
        if not repo.enabled:
            continue
        try:
            reports.append(scan_repository(db, repo.name, max_chain_depth, metadata_budget, stores))
        except FileRestoreError as exc:
            report = ScanReport(repository=repo.name)
            report.errors.append(("", str(exc)))
            reports.append(report)
    return reports
