"""Content hashes on demand: a file's hash read from its backup, and kept in the index.

A version indexed without a hash (larger than ``index_hash_max_size``) gets one the first
time something asks (a diff comparing contents): the backup is opened, the file read and
hashed, and the hash written to that version's row, so the next question costs nothing.
Opened backups are kept until :meth:`ContentHashes.close`, one filesystem per backup and
volume (library handles are per thread: a ContentHashes is for one thread).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from filerestore.blockio import CachedReader
from filerestore.catalog import Stores, locate_backup
from filerestore.db.engine import Database
from filerestore.errors import FileRestoreError
from filerestore.fs import Filesystem, open_filesystem
from filerestore.index.opening import StoreOpener
from filerestore.index.store import IndexStore
from filerestore.index.volume_writer import content_hash
from filerestore.settings import Settings
from filerestore.volume import find_volume, list_volumes


class ContentHashes:
    def __init__(
        self, db: Database, settings: Settings | None = None, stores: Stores | None = None
    ) -> None:
        self.db = db
        self.settings = settings or Settings()
        #: backups are read through the repository's store (local or S3)
        self.opener = StoreOpener(db, self.settings, stores)
        self._open: dict[tuple[int, str], Filesystem[Any]] = {}
        self._stack = ExitStack()

    def filesystem(self, backup_id: int, volume: str) -> Filesystem[Any]:
        key = (backup_id, volume)
        if key not in self._open:
            info = locate_backup(self.db, backup_id, self.opener.stores)
            disk = self._stack.enter_context(self.opener.open(info))
            fs = open_filesystem(CachedReader(find_volume(list_volumes(disk), volume).reader))
            self._stack.callback(fs.close)
            self._open[key] = fs
        return self._open[key]

    def of(
        self, backup_id: int, volume: str, path: str, key: tuple[int, int, int, int]
    ) -> bytes | None:
        """The hash of ``path`` in the backup (None when it cannot be read), stored at the
        version ``key`` (volume id, parent dir, name id, first seq)."""
        try:
            digest = content_hash(self.filesystem(backup_id, volume), path)
        except FileRestoreError:
            return None
        with self.db.write() as session:
            IndexStore(session).execute(
                "UPDATE index_versions SET hash = ? WHERE volume_id = ? AND parent_no = ? "
                "AND name_id = ? AND first_seq = ?",
                (digest, *key),
            )
        return digest

    def close(self) -> None:
        self._open.clear()
        self._stack.close()
