"""A guest disk: the top of an opened backing chain, read through one ``read_at``.

# References: QEMU docs/interop/qcow2.txt; see chain.py for the backing-name rules.
"""

from __future__ import annotations

import os
import threading

from filerestore.blockio import SizedReader
from filerestore.image.chain import ChainLink, OpenedLink, open_chain
from filerestore.image.metadata import (
    DEFAULT_METADATA_BUDGET,
    MetadataCache,
    layer_working_set,
)
from filerestore.image.qcow2 import Layer, Qcow2Layer
from filerestore.source import FileSignature, LocalStore

DEFAULT_MAX_CHAIN_DEPTH = 64


class DiskImage(SizedReader):
    """The guest disk of an image and its backing chain (a blockio Reader, thread-safe)."""

    def __init__(self, opened: list[OpenedLink], budget: int = DEFAULT_METADATA_BUDGET) -> None:
        self._files = [o.file for o in opened]
        self.chain: list[ChainLink] = [o.link for o in opened]
        #: the tables of every file of the chain, within the open's metadata budget
        self.metadata = MetadataCache(budget)
        #: the least the budget must hold for this chain (see image.metadata)
        self.working_set = sum(layer_working_set(o.info.header) for o in opened if o.info)
        layer: Layer | None = None
        #: the readers of the chain's files, top first (image.allocation reads their tables)
        self.layers: list[Layer] = []
        try:
            for i, o in enumerate(reversed(opened)):
                if o.info is None:
                    layer = o.file
                else:
                    layer = Qcow2Layer(o.file, o.info.header, layer, self.metadata, i)
                self.layers.insert(0, layer)
        except BaseException:
            self.close()
            raise
        assert layer is not None
        self._top: Layer = layer
        self._size = layer.size
        self._closed = threading.Event()

    @property
    def signatures(self) -> list[tuple[str, FileSignature]]:
        """(repository name, signature when opened) of every file of the chain, top first."""
        return [(f.name, f.signature) for f in self._files]

    def _read(self, offset: int, n: int) -> bytes:
        if self._closed.is_set():
            raise ValueError("read from a closed DiskImage")
        return self._top.read_at(offset, n)

    def close(self) -> None:
        self._closed = getattr(self, "_closed", threading.Event())
        self._closed.set()
        for f in self._files:
            f.close()
        if hasattr(self, "metadata"):
            self.metadata.clear()

    def __enter__(self) -> DiskImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    store: LocalStore,
    name: str,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> DiskImage:
    """Open the image ``name`` of a repository's ``store`` and its backing chain."""
    return DiskImage(open_chain(store, name, max_chain_depth, metadata_budget), metadata_budget)


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
    store: LocalStore,
    name: str,
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    metadata_budget: int = DEFAULT_METADATA_BUDGET,
) -> list[ChainLink]:
    """The chain of the image ``name`` of ``store``, as :func:`probe_chain` gives it."""
    opened = open_chain(store, name, max_chain_depth, metadata_budget)
    for o in opened:
        o.file.close()
    return [o.link for o in opened]


__all__ = ["DiskImage", "open_backup", "open_image", "probe_backup", "probe_chain"]
