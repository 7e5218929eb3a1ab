"""The VMDK reader: a descriptor's extents (sparse, flat, zero) as one guest disk.

# References: VMware "Virtual Disk Format 1.1" ("Hosted Sparse Extents": grain directory,
# grain tables, grains; "Stream-Optimized Compressed Sparse Extents": grain markers,
# footer); QEMU block/vmdk.c (get_cluster_offset, vmdk_read_extent, vmdk_open_vmdk4's
# footer checks, vmdk_parent_open, vmdk_is_cid_valid) for what qemu-img writes and reads.

Subformats read: monolithicSparse and streamOptimized (one KDMV file, its descriptor
embedded), twoGbMaxExtentSparse, monolithicFlat, twoGbMaxExtentFlat and vmfs (a text
descriptor naming extent files, each opened through the repository store, relative to the
descriptor and never outside its directory). Snapshot chains: ``parentFileNameHint`` names
the parent, and its CID must equal this disk's ``parentCID``, as QEMU requires before it
reads a parent (a parent changed after its child was made would give wrong data).
"""

from __future__ import annotations

import bisect
import struct
import zlib
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from filerestore.errors import (
    CorruptImageError,
    ImageNotFoundError,
    RepositoryEscapeError,
    UnsupportedImageError,
)
from filerestore.image.format_link import FormatLink
from filerestore.image.mapped import (
    COMPRESSED,
    DATA,
    UNALLOCATED,
    ZERO,
    Layer,
    MappedLayer,
    PieceCache,
    Run,
    Table,
    add_run,
    cache_key,
    le32_array,
)
from filerestore.image.names import extent_name, windows_name
from filerestore.image.vmdk_descriptor import (
    COMPRESSION_DEFLATE,
    COWD_MAGIC,
    CREATE_TYPES,
    DESCRIPTOR_MAGIC,
    FLAG_MARKERS,
    FLAG_ZERO_GRAIN,
    GD_AT_END,
    MARKER_EOS,
    MARKER_FOOTER,
    MAX_DESCRIPTOR,
    NO_PARENT_CID,
    SECTOR,
    SPARSE_MAGIC,
    Descriptor,
    ExtentLine,
    SparseHeader,
    decode_descriptor,
    parse_descriptor,
    parse_sparse_header,
    validate_sparse_header,
)
from filerestore.source import LocalStore, StoreFile

GTE_ZEROED = 1  # QEMU VMDK_GTE_ZEROED, with FLAG_ZERO_GRAIN
_MARKER = struct.Struct("<QI")  # lba, size of the compressed data that follows
DECOMPRESSED_CACHE_GRAINS = 8


def is_vmdk(head: bytes) -> bool:
    return head[:4] in (SPARSE_MAGIC, COWD_MAGIC) or head.startswith(DESCRIPTOR_MAGIC)


@dataclass(frozen=True)
class SparseFile:
    """A hosted sparse extent as its header (or stream footer) describes it."""

    file: StoreFile
    header: SparseHeader  # the footer's copy for stream-optimized files with GD_AT_END


def read_sparse(file: StoreFile, head: bytes) -> SparseFile:
    try:
        header = parse_sparse_header(head[:SECTOR])
        if header.gd_offset == GD_AT_END:
            header = _footer_header(file)
        validate_sparse_header(header, file.size)
    except (CorruptImageError, UnsupportedImageError) as exc:
        raise type(exc)(f"{file.name}: {exc}") from exc
    return SparseFile(file, header)


def _footer_header(file: StoreFile) -> SparseHeader:
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

    def __init__(self, sparse: SparseFile, cache: PieceCache) -> None:
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
        table = self._cache.get((self._gt_key, sector))
        if table is None:
            table = le32_array(self.file.pread(sector * SECTOR, self.gtes * 4, "grain table"))
            self._cache.put((self._gt_key, sector), table)
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
        d = zlib.decompressobj()
        try:
            out = d.decompress(data, gb)
            if not d.eof and d.decompress(d.unconsumed_tail, 1):
                raise CorruptImageError(
                    f"compressed grain at sector {sector} inflates past the grain size ({gb})"
                )
        except zlib.error as exc:
            raise CorruptImageError(f"compressed grain at sector {sector}: {exc}") from exc
        if not d.eof or len(out) < length:
            raise CorruptImageError(
                f"compressed grain at sector {sector} decompresses to {len(out)} bytes, "
                f"short of {length}"
            )
        return out


class FlatExtent:
    def __init__(self, file: StoreFile, offset: int, size: int) -> None:
        self.file, self.offset, self.size = file, offset, size

    def runs(self, rel: int, end: int, base: int, runs: list[Run]) -> None:
        add_run(runs, DATA, base + rel, end - rel, self.file, self.offset + rel)


class ZeroExtent:
    def __init__(self, size: int) -> None:
        self.size = size

    def runs(self, rel: int, end: int, base: int, runs: list[Run]) -> None:
        add_run(runs, ZERO, base + rel, end - rel, None, 0)


Extent = SparseExtent | FlatExtent | ZeroExtent


class VmdkLayer(MappedLayer):
    def __init__(self, name: str, extents: list[Extent], backing: Layer | None) -> None:
        self.name = name
        self.backing = backing
        self.extents = extents
        self.starts: list[int] = []
        pos = 0
        for e in extents:
            self.starts.append(pos)
            pos += e.size
        self._size = pos
        self._grains: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._lock = Lock()

    def _runs(self, offset: int, end: int) -> list[Run]:
        runs: list[Run] = []
        i = bisect.bisect_right(self.starts, offset) - 1
        pos = offset
        while pos < end:
            base, extent = self.starts[i], self.extents[i]
            stop = min(end, base + extent.size)
            extent.runs(pos - base, stop - base, base, runs)
            pos = stop
            i += 1
        return runs

    def _fill_compressed(self, dst: memoryview, start: int, host: int) -> None:
        i = bisect.bisect_right(self.starts, start) - 1
        extent = self.extents[i]
        assert isinstance(extent, SparseExtent)
        rel = start - self.starts[i]
        into = rel % extent.grain_bytes
        need = min(extent.grain_bytes, extent.size - (rel - into))
        key = (i, host)
        with self._lock:
            grain = self._grains.get(key)
        if grain is None:
            grain = extent.grain(host, need)
            with self._lock:
                self._grains[key] = grain
                while len(self._grains) > DECOMPRESSED_CACHE_GRAINS:
                    self._grains.popitem(last=False)
        dst[:] = grain[into : into + len(dst)]


def open_vmdk(store: LocalStore, file: StoreFile, head: bytes) -> FormatLink:
    """Open a VMDK (a sparse file or a text descriptor) and its extents; not its parent."""
    files: list[StoreFile] = []
    try:
        if head[:4] in (SPARSE_MAGIC, COWD_MAGIC):
            sparse = read_sparse(file, head)
            desc = _embedded_descriptor(sparse)
            parts: list[SparseFile | tuple[StoreFile, ExtentLine] | ExtentLine] = [sparse]
            default = "streamOptimized" if sparse.header.compressed else "monolithicSparse"
            subformat = default if sparse.header.compressed else desc.create_type or default
        else:
            desc = _descriptor_file(file)
            subformat = desc.create_type or ""
            parts = _open_extents(store, file, desc, files)
        return _link(file, desc, subformat, parts, files)
    except BaseException:
        for f in files:
            f.close()
        raise


def _embedded_descriptor(sparse: SparseFile) -> Descriptor:
    h = sparse.header
    if not h.descriptor_offset or not h.descriptor_size:
        return Descriptor(None, None, None, None)
    size = min(h.descriptor_size * SECTOR, MAX_DESCRIPTOR)
    data = sparse.file.pread(h.descriptor_offset * SECTOR, size, "embedded descriptor")
    return _parse(sparse.file, decode_descriptor(data))


def _descriptor_file(file: StoreFile) -> Descriptor:
    if file.size > MAX_DESCRIPTOR:
        raise UnsupportedImageError(
            f"{file.name}: VMDK descriptor file of {file.size} bytes is larger than 1 MiB"
        )
    desc = _parse(file, decode_descriptor(file.pread(0, file.size, "descriptor")))
    if desc.create_type not in CREATE_TYPES:
        raise UnsupportedImageError(
            f"{file.name}: VMDK createType {desc.create_type!r} is not supported"
        )
    if not desc.extents:
        raise CorruptImageError(f"{file.name}: VMDK descriptor lists no extents")
    return desc


def _parse(file: StoreFile, text: str) -> Descriptor:
    try:
        return parse_descriptor(text)
    except (CorruptImageError, UnsupportedImageError) as exc:
        raise type(exc)(f"{file.name}: {exc}") from exc


def _open_extents(
    store: LocalStore, file: StoreFile, desc: Descriptor, files: list[StoreFile]
) -> list[SparseFile | tuple[StoreFile, ExtentLine] | ExtentLine]:
    parts: list[SparseFile | tuple[StoreFile, ExtentLine] | ExtentLine] = []
    for line in desc.extents:
        if line.name is None:
            parts.append(line)  # ZERO
            continue
        name = extent_name(line.name, file.name)
        try:
            extent = store.open(name, relative_to=file.name)
        except (RepositoryEscapeError, ImageNotFoundError) as exc:
            raise type(exc)(f"{file.name}: extent {line.name!r}: {exc}") from exc
        files.append(extent)
        if line.type == "SPARSE":
            head = extent.pread(0, min(extent.size, SECTOR), "sparse extent header")
            parts.append(read_sparse(extent, head))
        else:
            end = line.offset * SECTOR + line.sectors * SECTOR
            if end > extent.size:
                raise CorruptImageError(
                    f"{extent.name}: flat extent of {line.sectors} sectors at sector "
                    f"{line.offset} ends past the end of the file ({extent.size} bytes)"
                )
            parts.append((extent, line))
    return parts


def _link(
    file: StoreFile,
    desc: Descriptor,
    subformat: str,
    parts: list[SparseFile | tuple[StoreFile, ExtentLine] | ExtentLine],
    files: list[StoreFile],
) -> FormatLink:
    def build(backing: Layer | None, cache_bytes: int) -> Layer:
        cache = PieceCache(cache_bytes)
        extents: list[Extent] = []
        for p in parts:
            if isinstance(p, SparseFile):
                extents.append(SparseExtent(p, cache))
            elif isinstance(p, ExtentLine):
                extents.append(ZeroExtent(p.sectors * SECTOR))
            else:
                extents.append(FlatExtent(p[0], p[1].offset * SECTOR, p[1].sectors * SECTOR))
        return VmdkLayer(file.name, extents, backing)

    size = sum(
        p.header.capacity * SECTOR
        if isinstance(p, SparseFile)
        else (p.sectors if isinstance(p, ExtentLine) else p[1].sectors) * SECTOR
        for p in parts
    )
    grain = next((p.header.grain_size * SECTOR for p in parts if isinstance(p, SparseFile)), None)
    backing = parent_cid = None
    if desc.parent_hint is not None:
        backing = windows_name(desc.parent_hint, "parentFileNameHint", file.name)
        if desc.parent_cid is None or desc.parent_cid == NO_PARENT_CID:
            raise CorruptImageError(
                f"{file.name}: VMDK names a parent ({desc.parent_hint!r}) but no parentCID"
            )
        parent_cid = f"{desc.parent_cid:08x}"
    return FormatLink(
        format="vmdk",
        subformat=subformat,
        virtual_size=size,
        build=build,
        cluster_size=grain,
        backing_name=backing,
        backing_format="vmdk" if backing else None,
        identity=None if desc.cid is None else f"{desc.cid:08x}",
        parent_identity=parent_cid,
        files=files,
    )
