"""A guest disk: the top of an opened backing chain, read through one ``read_at``.

# References: QEMU docs/interop/qcow2.txt; see chain.py for the backing-name rules.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable

from filerestore.blockio import Closing, SizedReader
from filerestore.image.chain import ChainLink, OpenedLink, confirm_chain, open_chain
from filerestore.image.mapped import Layer
from filerestore.image.metadata import (
    DEFAULT_METADATA_BUDGET,
    MetadataCache,
    layer_working_set,
)
from filerestore.image.qcow2 import Qcow2Layer
from filerestore.source import LocalStore, Store

DEFAULT_MAX_CHAIN_DEPTH = 64


class DiskImage(SizedReader, Closing):
    """The guest disk of an image and its backing chain (a blockio Reader, thread-safe)."""

    def __init__(self, opened: list[OpenedLink], budget: int = DEFAULT_METADATA_BUDGET) -> None:
        self._files = [f for o in opened for f in o.files]
        #: one file per link of the chain, top first (not their extents or data files)
        self._chain_files = [o.file for o in opened]
        self.chain: list[ChainLink] = [o.link for o in opened]
        #: the tables of every file of the chain, within the open's metadata budget
        self.metadata = MetadataCache(budget)
        #: the least the budget must hold for this chain (see image.metadata)
        self.working_set = sum(
            layer_working_set(o.info.header) if o.info else o.working_set for o in opened
        )
        layer: Layer | None = None
        #: the readers of the chain's files, top first (image.allocation reads their tables)
        self.layers: list[Layer] = []
        try:
            for i, o in enumerate(reversed(opened)):
                if o.layer is not None:  # VMDK, VHD, VHDX, their tables in the same cache
                    layer = o.layer(layer, self.metadata)
                elif o.info is None:
                    layer = o.file
                elif o.info.header.data_file_is_raw:
                    assert o.data_file is not None  # no backing file either (qcow2_header)
                    from filerestore.image.qcow2_data_file import RawDataFile

                    layer = RawDataFile(o.data_file, o.info.header.size)
                else:
                    header = o.info.header
                    layer = Qcow2Layer(o.file, header, layer, self.metadata, i, o.data_file)
                self.layers.insert(0, layer)
        except BaseException:
            self.close()
            raise
        assert layer is not None
        self._top: Layer = layer
        self._size = layer.size
        self._closed = threading.Event()

    @property
    def signatures(self) -> list[tuple[str, Hashable]]:
        """(repository name, signature when opened) of every file of the chain, top first:
        one per :attr:`chain` link (a VMDK's extents and a QCOW2 data file are not links)."""
        return [(f.name, f.signature) for f in self._chain_files]

    def _read(self, offset: int, n: int) -> bytes:
        if self._closed.is_set():
            raise ValueError("read from a closed DiskImage")
        return self._top.read_at(offset, n)

    def confirm(self, wait: bool = True) -> None:
        """Wait until every file of the chain is known to be current (see open_chain);
        ``wait=False`` lets a store check in the background (see SourceFile.confirm)."""
        confirm_chain(self._files, wait)

    def close(self) -> None:
        self._closed = getattr(self, "_closed", threading.Event())
        self._closed.set()
        for f in self._files:
            f.close()
        if hasattr(self, "metadata"):
            self.metadata.clear()


def open_image(
    path: str | os.PathLike[str],
    repository: str | os.PathLike[str] | None = None,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> DiskImage:
    """Open ``path`` (qcow2 or raw) and its backing chain, confined to ``repository``.

    With ``repository`` the image itself must resolve inside it too; without it the chain
    is confined to the image's own (real) directory. The tables of the whole chain are kept
    within ``metadata_budget`` bytes. Raises ImageNotFoundError, CorruptImageError,
    UnsupportedImageError, MetadataBudgetError, RepositoryIOError, or a SafetyError
    subclass for a refused chain.
    """
    store, name = LocalStore.for_image(path, repository)
    with store:
        return open_backup(store, name, max_chain_depth, metadata_budget)


def open_backup(
    store: Store,
    name: str,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
    *,
    confirm: bool = True,
) -> DiskImage:
    """Open the image ``name`` of a repository's ``store`` and its backing chain.

    With ``confirm=False`` the files' currency checks may still be running: the caller
    calls :meth:`DiskImage.confirm` before it trusts or returns anything read.
    """
    opened = open_chain(store, name, max_chain_depth, metadata_budget, confirm=confirm)
    return DiskImage(opened, metadata_budget)


def probe_chain(
    path: str | os.PathLike[str],
    repository: str | os.PathLike[str] | None = None,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> list[ChainLink]:
    """The chain of ``path``, top first, from headers only, with open_image's validation."""
    store, name = LocalStore.for_image(path, repository)
    with store:
        return probe_backup(store, name, max_chain_depth, metadata_budget)


def probe_backup(
    store: Store,
    name: str,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> list[ChainLink]:
    """The chain of the image ``name`` of ``store``, as :func:`probe_chain` gives it."""
    opened = open_chain(store, name, max_chain_depth, metadata_budget)
    for o in opened:
        o.close()
    return [o.link for o in opened]


__all__ = ["DiskImage", "open_backup", "open_image", "probe_backup", "probe_chain"]
