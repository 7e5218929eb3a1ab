"""Index jobs open backups as sessions do: counted against the same limits, within the same
memory budget, through the same stores.

:class:`SessionSlots` is the opener (:class:`filerestore.index.opening.BackupOpener`) the
service's index runners and ``filerestore index run`` are given. Each open of a pass

- holds one of the host's ``max_sessions`` slots while the pass reads (a ``mounted`` row of
  owner ``index``, without a volume: :mod:`~filerestore.service.held_slots`), so mounts and
  index jobs together never exceed the limit, and the index's jobs together hold at most
  ``max_sessions_per_owner`` of them. A job that finds no free slot is refused with
  SessionLimitError and goes back to the queue (filerestore.index.jobs);
- reads the backup through the process's stores (a local directory or an S3 bucket, the
  sessions' own :class:`~filerestore.catalog.Stores`) within ``image_metadata_budget``.

The slot's row expires ``index_job_lease`` seconds after its last renewal; a thread renews
it while the pass runs, so a runner that died gives its slot back once the cleanup sees the
row expired.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

from filerestore.catalog import BackupInfo, Stores, opened_disk
from filerestore.errors import FileRestoreError
from filerestore.image import DiskImage
from filerestore.service.held_slots import hold_slot, keep_slot, release_slot
from filerestore.service.principal import Principal
from filerestore.service.sessions import SessionManager

log = logging.getLogger("filerestore.index")

#: the owner of the index jobs' slots (never a token's: tokens are "token:N")
INDEX_JOBS = Principal(owner="index", name="index jobs", admin=False)


class SessionSlots:
    """Opens index passes' backups in session slots of ``manager`` (see the module)."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    @property
    def stores(self) -> Stores:
        return self.manager.stores

    @contextlib.contextmanager
    def open(self, info: BackupInfo) -> Iterator[DiskImage]:
        manager = self.manager
        hold = timedelta(seconds=manager.settings.index_job_lease)
        mount_id = hold_slot(manager, info.id, INDEX_JOBS, hold)
        keeper = _Keeper(manager, mount_id, hold)
        try:
            with opened_disk(manager.db, info, manager.settings, manager.stores) as disk:
                keeper.start()
                yield disk
        finally:
            keeper.stop()
            release_slot(manager, mount_id)


class _Keeper:
    """Renews a held slot's expiry every third of its hold, until stopped."""

    def __init__(self, manager: SessionManager, mount_id: str, hold: timedelta) -> None:
        self.manager = manager
        self.mount_id = mount_id
        self.hold = hold
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-slot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.hold.total_seconds() / 3):
            try:
                keep_slot(self.manager, self.mount_id, self.hold)
            except FileRestoreError as exc:  # the database away for a moment
                log.warning("index slot %s not renewed: %s", self.mount_id, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
