"""VMDK extents: a hosted sparse extent through its grain directory and grain tables (plain
or stream-optimized, with compressed grains), a flat extent, a zero extent.

# References: VMware "Virtual Disk Format 1.1" ("Hosted Sparse Extents", "Grain Table and
# Grain Directory", "Stream-Optimized Compressed Sparse Extents": grain markers, footer);
# QEMU block/vmdk.c (get_cluster_offset, vmdk_read_extent, vmdk_open_vmdk4's footer checks).

Each extent answers ``runs(rel, end, base, runs)`` for its part of the guest disk. Grain
directories are read in pieces and grain tables whole (2 KiB), through the layer's bounded
cache. A compressed grain is inflated with its output bounded by the grain size: a grain
that inflates further is refused (a decompression bomb), as QEMU's uncompress() into one
grain's buffer fails.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from typing import cast

from zlib_ng import zlib_ng

from filerestore.errors import CorruptImageError, UnsupportedImageError
from filerestore.image.mapped import (
    COMPRESSED,
    DATA,
    UNALLOCATED,
    ZERO,
    Run,
    Table,
    add_run,
    cache_key,
    le32_array,
)
from filerestore.image.metadata import MetadataCache
from filerestore.image.vmdk_descriptor import (
    COMPRESSION_DEFLATE,
    FLAG_MARKERS,
    FLAG_ZERO_GRAIN,
    GD_AT_END,
    MARKER_EOS,
    MARKER_FOOTER,
    SECTOR,
    SparseHeader,
    parse_sparse_header,
    validate_sparse_header,
)
from filerestore.source import SourceFile

# zlib-ng's stubs declare ``error`` as an instance; at run time it is the exception class
INFLATE_ERROR: type[Exception] = zlib_ng.error  # type: ignore[assignment]

GTE_ZEROED = 1  # QEMU VMDK_GTE_ZEROED, with FLAG_ZERO_GRAIN
_MARKER = struct.Struct("<QI")  # lba, size of the compressed data that follows


@dataclass(frozen=True)
class SparseFile:
    """A hosted sparse extent as its header (or stream footer) describes it."""

    file: SourceFile
    header: SparseHeader  # the footer's copy for stream-optimized files with GD_AT_END


def read_sparse(file: SourceFile, head: bytes) -> SparseFile:
    try:
        header = parse_sparse_header(head[:SECTOR])
        if header.gd_offset == GD_AT_END:
            header = _footer_header(file)
        validate_sparse_header(header, file.size)
    except (CorruptImageError, UnsupportedImageError) as exc:
        raise type(exc)(f"{file.name}: {exc}") from exc
    return SparseFile(file, header)


def _footer_header(file: SourceFile) -> SparseHeader:
    """A stream-optimized file's real header: the footer, 1536 bytes before its end."""
    if file.size < 4 * SECTOR:
        raise CorruptImageError("stream-optimized VMDK too short for its footer")
    tail = file.pread(file.size - 3 * SECTOR, 3 * SECTOR, "footer")
    _, size, kind = struct.unpack_from("<QII", tail, 0)
    eos_val, eos_size, eos_kind = struct.unpack_from("<QII", tail, 2 * SECTOR)
    if (size, kind, eos_val, eos_size, eos_kind) != (0, MARKER_FOOTER, 0, 0, MARKER_EOS):
        raise CorruptImageError(
            "stream-optimized VMDK has no valid footer and end-of-stream marker"
        )
    header = parse_sparse_header(tail[SECTOR : 2 * SECTOR])
    if header.gd_offset == GD_AT_END:
        raise CorruptImageError("stream-optimized VMDK footer does not locate its grain directory")
    return header


class SparseExtent:
    """Guest bytes of one sparse extent through its grain directory and grain tables."""

    def __init__(self, sparse: SparseFile, cache: MetadataCache) -> None:
        h = sparse.header
        self.file = sparse.file
        self.size = h.capacity * SECTOR
        self.grain_bytes = h.grain_size * SECTOR
        self.gtes = h.num_gtes_per_gt
        self.gt_span = self.gtes * self.grain_bytes
        self.zero_grain = bool(h.flags & FLAG_ZERO_GRAIN)
        self.compressed = h.compress_algorithm == COMPRESSION_DEFLATE
        self.markers = bool(h.flags & FLAG_MARKERS)
        self.gd = Table(
            self.file, h.gd_offset * SECTOR, h.gd_entries, "<I", "grain directory", cache
        )
        # grain tables are read whole (2 KiB at 512 entries) and cached beside the GD pieces
        self._gt_key = cache_key()
        self._cache = cache

    def grain_table(self, gdi: int) -> array[int] | None:
        sector = self.gd[gdi]
        if sector == 0:
            return None
        table = cast("array[int] | None", self._cache.get((self._gt_key, sector)))
        if table is None:
            table = le32_array(self.file.pread(sector * SECTOR, self.gtes * 4, "grain table"))
            self._cache.put((self._gt_key, sector), table, self.gtes * 4)
        return table

    def runs(self, rel: int, end: int, base: int, runs: list[Run]) -> None:
        gb = self.grain_bytes
        while rel < end:
            table = self.grain_table(rel // self.gt_span)
            gti = (rel % self.gt_span) // gb
            table_end = min(end, (rel // self.gt_span + 1) * self.gt_span)
            while rel < table_end:
                into = rel % gb
                n = min(gb - into, table_end - rel)
                entry = 0 if table is None else table[gti]
                if entry == 0:
                    add_run(runs, UNALLOCATED, base + rel, n, None, 0)
                elif entry == GTE_ZEROED and self.zero_grain:
                    add_run(runs, ZERO, base + rel, n, None, 0)
                elif self.compressed:
                    add_run(runs, COMPRESSED, base + rel, n, self.file, entry)
                else:
                    add_run(runs, DATA, base + rel, n, self.file, entry * SECTOR + into)
                rel += n
                gti += 1

    def grain(self, sector: int, length: int) -> bytes:
        """The decompressed grain at ``sector``: at least ``length`` bytes, at most a grain."""
        gb = self.grain_bytes
        offset = sector * SECTOR
        if self.markers:
            _, size = _MARKER.unpack(self.file.pread(offset, _MARKER.size, "grain marker"))
            if not 0 < size <= 2 * gb:  # QEMU vmdk_read_extent reads two grains at most
                raise CorruptImageError(f"grain marker at sector {sector} gives {size} bytes")
            offset += _MARKER.size
        else:
            size = min(gb * 2, self.file.size - offset)
        data = self.file.pread(offset, size, "compressed grain")
        d = zlib_ng.decompressobj()  # zlib-compatible, inflates 3-4x faster than zlib
        try:
            out = d.decompress(data, gb)
            if not d.eof and d.decompress(d.unconsumed_tail, 1):
                raise CorruptImageError(
                    f"compressed grain at sector {sector} inflates past the grain size ({gb})"
                )
        except INFLATE_ERROR as exc:
            raise CorruptImageError(f"compressed grain at sector {sector}: {exc}") from exc
        if not d.eof or len(out) < length:
            raise CorruptImageError(
                f"compressed grain at sector {sector} decompresses to {len(out)} bytes, "
                f"short of {length}"
            )
        return out


class FlatExtent:
    def __init__(self, file: SourceFile, offset: int, size: int) -> None:
        self.file, self.offset, self.size = file, offset, size

    def runs(self, rel: int, end: int, base: int, runs: list[Run]) -> None:
        add_run(runs, DATA, base + rel, end - rel, self.file, self.offset + rel)


class ZeroExtent:
    def __init__(self, size: int) -> None:
        self.size = size

    def runs(self, rel: int, end: int, base: int, runs: list[Run]) -> None:
        add_run(runs, ZERO, base + rel, end - rel, None, 0)


Extent = SparseExtent | FlatExtent | ZeroExtent
