"""The QCOW2 reader: guest offsets through the L1 and L2 tables to host clusters.

# References: QEMU docs/interop/qcow2.txt ("Cluster mapping", "Extended L2 Entries");
# QEMU block/qcow2-cluster.c (qcow2_get_host_offset) and block/qcow2.c
# (qcow2_co_preadv_part) for how each cluster type reads.

A read walks the guest clusters it covers and groups them into runs: host-contiguous normal
clusters become one ``preadv`` straight into the result buffer; unallocated clusters become one
read of the backing layer (zeros past the backing's end: an overlay may be larger); zero
clusters are left as the buffer's zeros; compressed clusters are decompressed one by one.
With an external data file, normal clusters are read from it instead, at their guest offset
(see :mod:`filerestore.image.qcow2_data_file`).
"""

from __future__ import annotations

import sys
import threading
from array import array
from collections.abc import Iterator
from typing import cast

from filerestore.blockio import SizedReader
from filerestore.errors import CorruptImageError
from filerestore.image.file_errors import naming_file
from filerestore.image.mapped import Layer, read_backing, zero_fill
from filerestore.image.metadata import L1_PIECE_BYTES, MetadataCache, l1_bytes_needed
from filerestore.image.qcow2_entries import (
    L2E_OFFSET_MASK,
    QCOW_OFLAG_COMPRESSED,
    QCOW_OFLAG_ZERO,
    ClusterType,
    Geometry,
    data_file_cluster,
    data_file_host_cluster,
    get_cluster_type,
    get_subcluster_type,
    has_host_cluster,
    l2_table_offset,
    normal_host_offset,
    offset_into_cluster,
    offset_to_l1_index,
    offset_to_l2_index,
    parse_compressed_l2_entry,
)
from filerestore.image.qcow2_header import Qcow2Header
from filerestore.source import SourceFile

# (cluster type, guest offset, length, host offset or, for compressed, the L2 entry)
_Run = tuple[ClusterType, int, int, int]
_UNALLOCATED, _ZERO, _NORMAL, _COMPRESSED = (int(t) for t in ClusterType)
# what a cache entry holds, with the layer's key: an L1 piece, an L2 table (by L1 index), or
# a decompressed cluster (by its L2 entry)
_L1, _L2, _COMPRESSED_KEY = 0, 1, 2
_L1_PIECE_ENTRIES = L1_PIECE_BYTES // 8
# an L1 entry with no L2 table, remembered so a hole costs one lookup; a nominal cost keeps
# a reader sweeping millions of empty entries within the budget too
_NO_TABLE: array[int] = array("Q")
_NO_TABLE_COST = 64


# Reads are assembled in a per-thread buffer that lives on: a fresh 1 MiB buffer per read
# (plus the bytes returned) made glibc map and unmap memory each time, 0.6 GB/s instead of
# 6-9 on fragmented images. Larger reads get a buffer of their own.
SCRATCH_MAX = 2 << 20  # bytes kept per reading thread: 1-2 MiB
_local = threading.local()


def _scratch(n: int) -> memoryview:
    if n > SCRATCH_MAX:
        return memoryview(bytearray(n))
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None or len(buf) < n:
        buf = bytearray(max(n, 1 << 20))
        _local.buf = buf
    return memoryview(buf)[:n]


def _be_u64_array(data: bytes) -> array[int]:
    table = array("Q", data)
    if sys.byteorder == "little":
        table.byteswap()
    return table


class Qcow2Layer(SizedReader):
    """One qcow2 file of a chain, reading unallocated clusters from ``backing``.

    Its tables are read when a read needs them and kept in ``cache``, which the whole chain
    shares within its metadata budget (see :mod:`filerestore.image.metadata`); ``key`` tells
    this file's entries from the other files' there. Its data clusters are read from
    ``data_file`` when it has an external one (not raw), else from ``file``.
    """

    def __init__(
        self,
        file: SourceFile,
        header: Qcow2Header,
        backing: Layer | None,
        cache: MetadataCache,
        key: int,
        data_file: SourceFile | None = None,
    ) -> None:
        self.file = file
        self.data = file if data_file is None else data_file
        self._has_data_file = data_file is not None
        self.header = header
        self.backing = backing
        self.g = Geometry(header.cluster_bits, header.extended_l2)
        self._size = header.size
        self._cache = cache
        self._key = key
        # only the entries that map the virtual disk; the rest may address VM state
        self._l1_entries = l1_bytes_needed(header) // 8

    def _l1_entry(self, l1_index: int) -> int:
        """One L1 entry, from the piece of the table that holds it (read on first use)."""
        piece_no, at = divmod(l1_index, _L1_PIECE_ENTRIES)
        key = (self._key, _L1, piece_no)
        piece = cast("array[int] | None", self._cache.get(key))
        if piece is None:
            start = piece_no * _L1_PIECE_ENTRIES
            count = min(_L1_PIECE_ENTRIES, self._l1_entries - start)
            offset = self.header.l1_table_offset + start * 8
            piece = _be_u64_array(self.file.pread(offset, count * 8, "L1 table"))
            self._cache.put(key, piece, count * 8)
        return piece[at]

    def l2_table(self, l1_index: int) -> array[int] | None:
        """The L2 table of ``l1_index`` (None: no table, every cluster it maps unallocated)."""
        return self._l2_table(l1_index)

    def _l2_table(self, l1_index: int) -> array[int] | None:
        key = (self._key, _L2, l1_index)
        table = cast("array[int] | None", self._cache.get(key))
        if table is None:
            offset = l2_table_offset(self.g, self._l1_entry(l1_index))
            if offset == 0:
                table = _NO_TABLE
                self._cache.put(key, table, _NO_TABLE_COST)
            else:
                cs = self.g.cluster_size
                table = _be_u64_array(self.file.pread(offset, cs, "L2 table"))
                self._cache.put(key, table, cs)
        return None if table is _NO_TABLE else table

    def _pieces(self, offset: int, end: int) -> Iterator[_Run]:
        """(type, guest offset, length, host offset or L2 entry) per cluster piece."""
        g = self.g
        cs = g.cluster_size
        span_bits = g.l2_bits + g.cluster_bits  # guest bytes one L2 table maps
        step = 2 if g.extended_l2 else 1  # words per L2 entry
        pos = offset
        while pos < end:
            table = self._l2_table(offset_to_l1_index(g, pos))
            i = offset_to_l2_index(g, pos) * step
            table_end = min(end, ((pos >> span_bits) + 1) << span_bits)
            while pos < table_end:
                n = min(cs - offset_into_cluster(g, pos), table_end - pos)
                entry = 0 if table is None else table[i]
                if step == 2 and not entry & QCOW_OFLAG_COMPRESSED:
                    bitmap = 0 if table is None else table[i + 1]
                    yield from self._subcluster_pieces(pos, n, entry, bitmap)
                elif self._has_data_file:  # only compressed entries get here: refused
                    data_file_host_cluster(g, entry, pos - offset_into_cluster(g, pos))
                else:
                    kind = get_cluster_type(entry)
                    if kind == ClusterType.NORMAL:
                        entry = normal_host_offset(g, entry) + offset_into_cluster(g, pos)
                    yield kind, pos, n, entry
                pos += n
                i += step

    def _subcluster_pieces(self, pos: int, n: int, entry: int, bitmap: int) -> Iterator[_Run]:
        g = self.g
        ext = self._has_data_file
        host = normal_host_offset(g, entry) if entry & L2E_OFFSET_MASK else 0
        if ext and has_host_cluster(entry, ext):
            data_file_host_cluster(g, entry, pos - offset_into_cluster(g, pos))
        sc_size = 1 << g.subcluster_bits
        end = pos + n
        while pos < end:
            into = offset_into_cluster(g, pos)
            m = min(sc_size - (into & (sc_size - 1)), end - pos)
            kind = get_subcluster_type(entry, bitmap, into >> g.subcluster_bits, ext)
            yield kind, pos, m, host + into if kind == ClusterType.NORMAL else 0
            pos += m

    def _read(self, offset: int, n: int) -> bytes:
        with naming_file(self.file.name, CorruptImageError):
            runs = self._runs(offset, offset + n)
            if len(runs) == 1 and runs[0][0] == ClusterType.NORMAL:
                return self.data.pread(runs[0][3], n, "data cluster")
            view = _scratch(n)
            self._fill(view, offset, runs)
            return bytes(view)

    def read_into(self, dst: memoryview, offset: int) -> None:
        """Fill ``dst`` with the ``len(dst)`` guest bytes at ``offset``.

        The chain fills one buffer top to bottom: no layer copies what a layer below read.
        """
        with naming_file(self.file.name, CorruptImageError):
            self._fill(dst, offset, self._runs(offset, offset + len(dst)))

    def _fill(self, view: memoryview, offset: int, runs: list[_Run]) -> None:
        for kind, start, length, host in runs:
            dst = view[start - offset : start - offset + length]
            if kind == ClusterType.NORMAL:
                self.data.pread_into(dst, host, "data cluster")
            elif kind == ClusterType.UNALLOCATED:
                read_backing(self.backing, dst, start)
            elif kind == ClusterType.COMPRESSED:
                cluster = self._compressed_cluster(host)
                into = offset_into_cluster(self.g, start)
                dst[:] = cluster[into : into + length]
            else:
                zero_fill(dst)

    def _runs(self, offset: int, end: int) -> list[_Run]:
        """The pieces of [offset, end) coalesced into maximal runs of one kind."""
        if not self.g.extended_l2:
            return self._standard_runs(offset, end)
        runs: list[_Run] = []
        for piece in self._pieces(offset, end):
            kind, _, n, host = piece
            if runs:
                last = runs[-1]
                if (
                    kind == last[0]
                    and kind != ClusterType.COMPRESSED
                    and (kind != ClusterType.NORMAL or last[3] + last[2] == host)
                ):
                    runs[-1] = (kind, last[1], last[2] + n, last[3])
                    continue
            runs.append(piece)
        return runs

    def _standard_runs(self, offset: int, end: int) -> list[_Run]:
        """_pieces and the coalescing of _runs in one loop, for 8-byte L2 entries.

        This is the hot path of every read (a 1 MiB read of a 4 KiB-cluster image has 256
        entries), so get_cluster_type and normal_host_offset are inlined here (but not for
        images with an external data file, whose entries carry more rules).
        """
        g = self.g
        ext = self._has_data_file
        cb = g.cluster_bits
        cs = 1 << cb
        in_cluster = cs - 1
        span_bits = g.l2_bits + cb
        l2_mask = g.l2_size - 1
        runs: list[_Run] = []
        kind = run_kind = -1
        run_start = run_len = run_host = 0
        pos = offset
        while pos < end:
            table = self._l2_table(pos >> span_bits)
            i = (pos >> cb) & l2_mask
            table_end = min(end, ((pos >> span_bits) + 1) << span_bits)
            while pos < table_end:
                into = pos & in_cluster
                n = min(cs - into, table_end - pos)
                entry = 0 if table is None else table[i]
                host = 0
                if ext:
                    kind, host = data_file_cluster(g, entry, pos - into)
                    if kind == _NORMAL:
                        host += into
                elif entry & QCOW_OFLAG_COMPRESSED:
                    kind, host = _COMPRESSED, entry
                elif entry & QCOW_OFLAG_ZERO:
                    kind = _ZERO
                elif entry & L2E_OFFSET_MASK == 0:
                    kind = _UNALLOCATED
                else:
                    kind, host = _NORMAL, entry & L2E_OFFSET_MASK
                    if host & in_cluster:
                        normal_host_offset(g, entry)  # raises: not cluster-aligned
                    host += into
                if (
                    kind == run_kind
                    and kind != _COMPRESSED
                    and (kind != _NORMAL or run_host + run_len == host)
                ):
                    run_len += n
                else:
                    if run_kind >= 0:
                        runs.append((ClusterType(run_kind), run_start, run_len, run_host))
                    run_kind, run_start, run_len, run_host = kind, pos, n, host
                pos += n
                i += 1
        if run_kind >= 0:
            runs.append((ClusterType(run_kind), run_start, run_len, run_host))
        return runs

    def _compressed_cluster(self, l2_entry: int) -> bytes:
        key = (self._key, _COMPRESSED_KEY, l2_entry)
        cached = cast("bytes | None", self._cache.get_cluster(key))
        if cached is not None:
            return cached
        coffset, csize = parse_compressed_l2_entry(self.g, l2_entry)
        size = self.file.size
        if coffset >= size:
            raise CorruptImageError(
                f"{self.file.name}: compressed cluster at {coffset:#x} is past the end of the "
                f"file ({size} bytes)"
            )
        # QEMU's last compressed cluster may end inside a sector the file does not fill
        data = self.file.pread(coffset, min(csize, size - coffset), "compressed cluster")
        # imported with the first compressed cluster: most images have none (CLI start-up)
        from filerestore.image.compression import decompress_cluster

        cluster = decompress_cluster(self.header.compression, data, self.g.cluster_size)
        self._cache.put_cluster(key, cluster, len(cluster))
        return cluster
