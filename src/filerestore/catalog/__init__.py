"""The backup catalog: repositories (local directories or mounted shares) and their backups."""

from filerestore.catalog.backups import (
    BackupInfo,
    get_backup,
    list_backups,
    locate_backup,
    register_backup,
    require_readable,
)
from filerestore.catalog.repositories import (
    Availability,
    RemovedRepository,
    RepositoryInfo,
    add_repository,
    check_availability,
    get_repository,
    list_repositories,
    remove_repository,
    repositories_with_availability,
    sync_configured,
)
from filerestore.catalog.scan import ScanReport, scan_all, scan_repository

__all__ = [
    "Availability",
    "BackupInfo",
    "RemovedRepository",
    "RepositoryInfo",
    "ScanReport",
    "add_repository",
    "check_availability",
    "get_backup",
    "get_repository",
    "list_backups",
    "list_repositories",
    "locate_backup",
    "register_backup",
    "remove_repository",
    "repositories_with_availability",
    "require_readable",
    "scan_all",
    "scan_repository",
    "sync_configured",
]
