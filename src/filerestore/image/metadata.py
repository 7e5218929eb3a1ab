"""The metadata budget of one opened image: every table of its chain, in one bounded cache.

# References: QEMU docs/interop/qcow2.txt ("Cluster mapping"); QEMU docs/qcow2-cache.txt and
# block/qcow2.c (read_cache_sizes(), MIN_L2_CACHE_SIZE) for the idea of a bounded table
# cache per image and a minimum it must hold to make progress.

A QCOW2 file's L1 table may be 32 MiB (QEMU's limit), and a chain may have dozens of files:
reading every L1 table whole cost 2 GiB for a 64-file chain that is 13 MiB on disk. So
nothing is read whole. The L1 table is read in pieces of :data:`L1_PIECE_BYTES` when a read
needs an entry in them; L2 tables (one cluster each) and decompressed clusters likewise.
All of them, for every file of the chain, live in one :class:`MetadataCache` bounded in
bytes by the open's budget (the ``image_metadata_budget`` setting), least recently used out
first.

What must fit: a read that falls through every file of the chain needs, in each qcow2 file,
the L1 piece and the L2 table of that offset at once (QEMU likewise never lets an image's L2
cache fall below MIN_L2_CACHE_SIZE tables). :func:`layer_working_set` is that per-file minimum;
a chain whose files' minimums add up to more than the budget is refused when it is opened
(:class:`~filerestore.errors.MetadataBudgetError`), before its tables are read, rather than
re-reading its tables from disk on every read or growing past the budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from filerestore.errors import MetadataBudgetError
from filerestore.image.qcow2_header import Qcow2Header, size_to_l1

MiB = 1 << 20
DEFAULT_METADATA_BUDGET = 64 * MiB
#: bytes of L1 table read at a time: 2,048 entries, which map 1 TiB of guest disk with
#: 64 KiB clusters and 64 MiB with 512-byte ones
L1_PIECE_BYTES = 16 * 1024


def l1_bytes_needed(h: Qcow2Header) -> int:
    """Bytes of the L1 table that map the virtual disk (the rest may address VM state)."""
    return size_to_l1(h.cluster_bits, h.size, h.extended_l2) * 8


def layer_working_set(h: Qcow2Header) -> int:
    """The least a qcow2 file needs in the cache at once: one L1 piece and one L2 table
    (none when its raw external data file is read in their place: image.qcow2_data_file)."""
    if h.data_file_is_raw:
        return 0
    return min(L1_PIECE_BYTES, l1_bytes_needed(h)) + h.cluster_size


def check_budget(name: str, needed: int, layers: int, budget: int) -> None:
    """Refuse a chain whose first ``layers`` files need ``needed`` bytes, over ``budget``."""
    if needed > budget:
        raise MetadataBudgetError(
            f"{name}: reading this backing chain needs at least {_mib(needed)} of tables in "
            f"memory at once ({layers} qcow2 files: one L1 piece and one L2 table each), more "
            f"than the image metadata budget of {_mib(budget)} (setting image_metadata_budget)"
        )


def _mib(n: int) -> str:
    return f"{n / MiB:.1f} MiB ({n:,} bytes)"


class MetadataCache:
    """A thread-safe LRU map bounded by the total cost (bytes) of its values.

    Tables (L1 pieces, L2 tables) and decompressed clusters share the bound; clusters are
    also held to :data:`CLUSTERS_KEPT` at most, since a cluster is rarely read twice except
    by the small reads of a parser within it, and a sequential read of a compressed image
    would otherwise fill the whole budget with clusters read once. Values are computed
    outside the lock (two threads may read the same table; both results are equal); a value
    costlier than the whole capacity is not kept.
    """

    CLUSTERS_KEPT = 8

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tables: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._clusters: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def get(self, key: Hashable) -> object | None:
        return self._get(self._tables, key)

    def get_cluster(self, key: Hashable) -> object | None:
        return self._get(self._clusters, key)

    def put(self, key: Hashable, value: object, cost: int) -> None:
        self._put(self._tables, key, value, cost)

    def put_cluster(self, key: Hashable, value: object, cost: int) -> None:
        self._put(self._clusters, key, value, cost)

    def _get(self, items: OrderedDict[Hashable, tuple[object, int]], key: Hashable) -> object:
        with self._lock:
            item = items.get(key)
            if item is None:
                return None
            items.move_to_end(key)
            return item[0]

    def _put(
        self,
        items: OrderedDict[Hashable, tuple[object, int]],
        key: Hashable,
        value: object,
        cost: int,
    ) -> None:
        if cost > self.capacity:
            return
        with self._lock:
            old = items.pop(key, None)
            if old is not None:
                self._used -= old[1]
            items[key] = (value, cost)
            self._used += cost
            while len(self._clusters) > self.CLUSTERS_KEPT:
                self._used -= self._clusters.popitem(last=False)[1][1]
            # older clusters go before any table (a table maps many clusters), but never
            # the value just put: it is about to be read
            keep = 1 if items is self._clusters else 0
            while self._used > self.capacity:
                victims = self._clusters if len(self._clusters) > keep else self._tables
                self._used -= victims.popitem(last=False)[1][1]

    def clear(self) -> None:
        with self._lock:
            self._tables.clear()
            self._clusters.clear()
            self._used = 0
