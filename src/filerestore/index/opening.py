"""How an index pass opens its backup (:class:`BackupOpener`).

The runners of the service and of ``filerestore index run`` are given the session service's
opener (:class:`filerestore.service.index_slots.SessionSlots`): each open holds one of the
host's session slots, counted against ``max_sessions`` like a mount. The index cannot name
the service (they are beside each other in the layers), hence this protocol.
:class:`StoreOpener` opens without a slot, through the same stores and within the same
metadata budget: for a library user, the tests of the index's own logic and the benchmark.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from filerestore.catalog import BackupInfo, Stores, default_stores, opened_disk
from filerestore.db.engine import Database
from filerestore.image import DiskImage
from filerestore.settings import Settings


class BackupOpener(Protocol):
    """The stores a pass locates its backup through, and the open of the backup's disk
    (raising what refuses it: a limit, the metadata budget, an unreachable store)."""

    @property
    def stores(self) -> Stores: ...

    def open(self, info: BackupInfo) -> AbstractContextManager[DiskImage]: ...


class StoreOpener:
    """Opens through the repository's store (local or S3), holding no session slot."""

    def __init__(self, db: Database, settings: Settings, stores: Stores | None = None) -> None:
        self.db = db
        self.settings = settings
        self.stores = stores if stores is not None else default_stores()

    def open(self, info: BackupInfo) -> AbstractContextManager[DiskImage]:
        return opened_disk(self.db, info, self.settings, self.stores)
