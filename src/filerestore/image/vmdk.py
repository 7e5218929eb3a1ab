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
from typing import cast

from filerestore.errors import (
    CorruptImageError,
    ImageNotFoundError,
    RepositoryEscapeError,
    UnsupportedImageError,
)
from filerestore.image.format_link import FormatLink
from filerestore.image.mapped import (
    PIECE,
    Layer,
    MappedLayer,
    Run,
    cache_key,
)
from filerestore.image.metadata import MetadataCache
from filerestore.image.names import extent_name, windows_name
from filerestore.image.vmdk_descriptor import (
    COWD_MAGIC,
    CREATE_TYPES,
    DESCRIPTOR_MAGIC,
    MAX_DESCRIPTOR,
    NO_PARENT_CID,
    SECTOR,
    SPARSE_MAGIC,
    Descriptor,
    ExtentLine,
    SparseHeader,
    decode_descriptor,
    parse_descriptor,
)
from filerestore.image.vmdk_extents import (
    Extent,
    FlatExtent,
    SparseExtent,
    SparseFile,
    ZeroExtent,
    read_sparse,
)
from filerestore.source import SourceFile, Store


def is_vmdk(head: bytes) -> bool:
    return head[:4] in (SPARSE_MAGIC, COWD_MAGIC) or head.startswith(DESCRIPTOR_MAGIC)


class VmdkLayer(MappedLayer):
    def __init__(
        self, name: str, extents: list[Extent], backing: Layer | None, cache: MetadataCache
    ) -> None:
        self.name = name
        self.backing = backing
        self.extents = extents
        self._cache = cache
        self._grain_key = cache_key()
        self.starts: list[int] = []
        pos = 0
        for e in extents:
            self.starts.append(pos)
            pos += e.size
        self._size = pos

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
        key = (self._grain_key, i, host)  # decompressed grains: the cache's cluster share
        grain = cast("bytes | None", self._cache.get_cluster(key))
        if grain is None:
            grain = extent.grain(host, need)
            self._cache.put_cluster(key, grain, len(grain))
        dst[:] = grain[into : into + len(dst)]


def open_vmdk(store: Store, file: SourceFile, head: bytes) -> FormatLink:
    """Open a VMDK (a sparse file or a text descriptor) and its extents; not its parent."""
    files: list[SourceFile] = []
    try:
        if head[:4] in (SPARSE_MAGIC, COWD_MAGIC):
            sparse = read_sparse(file, head)
            desc = _embedded_descriptor(sparse)
            parts: list[SparseFile | tuple[SourceFile, ExtentLine] | ExtentLine] = [sparse]
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


def _descriptor_file(file: SourceFile) -> Descriptor:
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


def _parse(file: SourceFile, text: str) -> Descriptor:
    try:
        return parse_descriptor(text)
    except (CorruptImageError, UnsupportedImageError) as exc:
        raise type(exc)(f"{file.name}: {exc}") from exc


def _open_extents(
    store: Store, file: SourceFile, desc: Descriptor, files: list[SourceFile]
) -> list[SparseFile | tuple[SourceFile, ExtentLine] | ExtentLine]:
    parts: list[SparseFile | tuple[SourceFile, ExtentLine] | ExtentLine] = []
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


def _working_set(h: SparseHeader) -> int:
    """A read's least tables at once: a grain directory piece, a grain table, and for a
    stream-optimized extent the grain it inflates (image.metadata's working set)."""
    return PIECE + h.num_gtes_per_gt * 4 + (h.grain_size * SECTOR if h.compressed else 0)


def _link(
    file: SourceFile,
    desc: Descriptor,
    subformat: str,
    parts: list[SparseFile | tuple[SourceFile, ExtentLine] | ExtentLine],
    files: list[SourceFile],
) -> FormatLink:
    def build(backing: Layer | None, cache: MetadataCache) -> Layer:
        extents: list[Extent] = []
        for p in parts:
            if isinstance(p, SparseFile):
                extents.append(SparseExtent(p, cache))
            elif isinstance(p, ExtentLine):
                extents.append(ZeroExtent(p.sectors * SECTOR))
            else:
                extents.append(FlatExtent(p[0], p[1].offset * SECTOR, p[1].sectors * SECTOR))
        return VmdkLayer(file.name, extents, backing, cache)

    size = sum(
        p.header.capacity * SECTOR
        if isinstance(p, SparseFile)
        else (p.sectors if isinstance(p, ExtentLine) else p[1].sectors) * SECTOR
        for p in parts
    )
    grain = next((p.header.grain_size * SECTOR for p in parts if isinstance(p, SparseFile)), None)
    # a read needs one grain directory piece and one grain table (and, compressed, its grain)
    working_set = max(
        (_working_set(p.header) for p in parts if isinstance(p, SparseFile)), default=0
    )
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
        working_set=working_set,
    )
