"""The backup catalog: repositories (local directories, mounted shares, S3 buckets) and their
backups, read through each process's stores (:mod:`filerestore.catalog.stores`)."""

from filerestore.catalog.backups import (
    BackupInfo,
    get_backup,
    list_backups,
    locate_backup,
    register_backup,
    require_readable,
)
from filerestore.catalog.opening import opened_disk
from filerestore.catalog.repositories import (
    Availability,
    RemovedRepository,
    RepositoryInfo,
    RepositorySpec,
    add_declared,
    add_repository,
    availability,
    check_availability,
    get_repository,
    list_repositories,
    remove_repository,
    repositories_with_availability,
    sync_configured,
)
from filerestore.catalog.scan import ScanReport, scan_all, scan_repository
from filerestore.catalog.stores import Stores, default_stores

__all__ = [
    "Availability",
    "BackupInfo",
    "RemovedRepository",
    "RepositoryInfo",
    "RepositorySpec",
    "ScanReport",
    "Stores",
    "add_declared",
    "add_repository",
    "availability",
    "check_availability",
    "default_stores",
    "get_backup",
    "get_repository",
    "list_backups",
    "list_repositories",
    "locate_backup",
    "opened_disk",
    "register_backup",
    "remove_repository",
    "repositories_with_availability",
    "require_readable",
    "scan_all",
    "scan_repository",
    "sync_configured",
]
