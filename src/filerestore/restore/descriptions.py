"""Descriptions (chain and volumes) of catalogued backups, kept per process.

Describing a backup opens its whole backing chain and probes every volume, and
``GET /backups/{id}`` asks for it on every request, from any token. So a description is kept
in a bounded per-process LRU, keyed on the repository, the backup file and the limits it
was read with, together with the signature each file of its chain had when it was opened
(inode, size, mtime, ctime on disk; the ETag in S3). A request resolves the chain's names
again through the repository's store, as the open would (the top name, then each backing
name from the file naming it: one walk and one ``fstat`` per file on disk, one HEAD per
object in S3 unless the host confirmed it within ``s3_revalidate_after``; nothing read,
nothing parsed), and opens the chain again only when a name now leads to another file or a
file changed, or can no longer be reached; errors are not kept, so a refusal is always the
current one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from contextlib import ExitStack
from dataclasses import dataclass

from filerestore.errors import FileRestoreError
from filerestore.image import (
    DEFAULT_MAX_CHAIN_DEPTH,
    DEFAULT_METADATA_BUDGET,
    DiskImage,
    open_backup,
)
from filerestore.restore.describe import ImageDescription, describe_disk
from filerestore.source import LocalStore, Store

#: backups whose descriptions one process keeps (a description is a few KiB)
DEFAULT_ENTRIES = 256

_Key = tuple[str, str, int, int]


@dataclass(frozen=True, slots=True)
class _Kept:
    #: per file of the chain: (name as the open gives it, the file it is relative to,
    #: the signature the file had when opened)
    files: tuple[tuple[str, str | None, Hashable], ...]
    description: ImageDescription


class DescriptionCache:
    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[_Key, _Kept] = OrderedDict()
        self._lock = threading.Lock()
        #: how many descriptions were made by opening a chain (for tests and metrics)
        self.opened = 0

    def describe(
        self,
        root: str,
        name: str,
        *,
        store: Store | None = None,
        max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
        metadata_budget: int = DEFAULT_METADATA_BUDGET,
    ) -> ImageDescription:
        """The description of the image ``name`` of the repository at ``root`` (its
        directory or URL: what kept descriptions are told apart by), read through ``store``
        (default: a LocalStore on ``root``)."""
        with ExitStack() as scope:
            if store is None:
                store = scope.enter_context(LocalStore(root))
            return self._describe(store, root, name, max_chain_depth, metadata_budget)

    def _describe(
        self, store: Store, root: str, name: str, max_chain_depth: int, metadata_budget: int
    ) -> ImageDescription:
        key = (root, name, max_chain_depth, metadata_budget)
        with self._lock:
            kept = self._items.get(key)
        if kept is not None and _unchanged(store, kept.files):
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
            return kept.description
        with open_backup(store, name, max_chain_depth, metadata_budget) as image:
            description = describe_disk(image)
            files = _chain_files(name, image)
        with self._lock:
            self.opened += 1
            self._items[key] = _Kept(files, description)
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
        return description

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _chain_files(name: str, image: DiskImage) -> tuple[tuple[str, str | None, Hashable], ...]:
    files: list[tuple[str, str | None, Hashable]] = []
    given, relative_to = name, None
    for link, (canonical, signature) in zip(image.chain, image.signatures, strict=True):
        files.append((given, relative_to, signature))
        given, relative_to = link.backing_name or "", canonical
    return tuple(files)


def _unchanged(store: Store, files: tuple[tuple[str, str | None, Hashable], ...]) -> bool:
    try:
        return all(store.stat(n, rel).signature == sig for n, rel, sig in files)
    except FileRestoreError:
        return False  # gone, refused or unreadable now: open again for the precise error


#: the process's cache, used by the API's catalog detail
DESCRIPTIONS = DescriptionCache()
