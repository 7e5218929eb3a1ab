"""Opening a catalog backup's disk image through its repository's store (local or S3), as
sessions read it: every file confined to the repository, the chain's tables within the
metadata budget."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filerestore.catalog.backups import BackupInfo
from filerestore.catalog.repositories import get_repository
from filerestore.catalog.stores import Stores
from filerestore.db.engine import Database
from filerestore.image import DiskImage
from filerestore.image.disk import open_backup
from filerestore.settings import Settings


@contextmanager
def opened_disk(
    db: Database, info: BackupInfo, settings: Settings, stores: Stores
) -> Iterator[DiskImage]:
    """The disk image of the backup ``info`` (its whole chain), read through ``stores``
    within ``settings.image_metadata_budget``; closed when the block ends."""
    repository = get_repository(db, info.repository)
    with stores.opened(repository) as store:  # what it opened stays readable after
        disk = open_backup(
            store, info.path, settings.max_chain_depth, settings.image_metadata_budget
        )
    with disk:
        yield disk
