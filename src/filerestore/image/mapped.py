"""The read path VMDK, VHD and VHDX share: guest ranges mapped in runs onto files.

# References: the mapping each format defines (VMware "Virtual Disk Format 1.1" grain
# tables, Microsoft "VHD Image Format Specification" block allocation table, [MS-VHDX] 2.5
# BAT); QEMU block/vmdk.c vmdk_co_preadv, block/vpc.c vpc_co_preadv and block/vhdx.c
# vhdx_co_readv for how unallocated ranges read (the parent, or zeros).

A format layer answers one question, ``_runs(offset, end)``: which pieces of the guest
range are data at a host offset of one of its files, zeros, left to the parent
(unallocated), or compressed. Everything else (the buffer, the parent reads, the zeros,
errors naming the file) is here, once.

Tables (grain directories and grain tables, BATs, sector bitmaps) are never read whole: a
:class:`Table` reads aligned pieces of ``PIECE`` bytes on demand, kept in the open's one
:class:`~filerestore.image.metadata.MetadataCache` with the QCOW2 tables of the same chain,
within its metadata budget.
"""

from __future__ import annotations

import struct
import sys
import threading
from array import array
from dataclasses import InitVar, dataclass
from typing import Protocol, cast

from filerestore.blockio import SizedReader, clamp
from filerestore.errors import CorruptImageError
from filerestore.image.file_errors import naming_file
from filerestore.image.metadata import MetadataCache
from filerestore.source import SourceFile

UNALLOCATED, ZERO, DATA, COMPRESSED = 0, 1, 2, 3
# (kind, guest offset, length, file, host offset). For COMPRESSED, host is the format's own
# address of the compressed unit, and the format's _fill_compressed reads it.
Run = tuple[int, int, int, SourceFile | None, int]

PIECE = 4096  # bytes of a table read at a time: a page, and one VHD/VHDX BAT sector run
_ZEROS = bytes(1 << 20)


class Layer(Protocol):
    """A file of the chain as the layer above reads it (the qcow2 reader's contract too)."""

    @property
    def size(self) -> int: ...

    def read_into(self, dst: memoryview, offset: int) -> None: ...

    def read_at(self, offset: int, length: int) -> bytes: ...


def zero_fill(dst: memoryview) -> None:
    zeros = memoryview(_ZEROS)
    for i in range(0, len(dst), len(_ZEROS)):
        chunk = dst[i : i + len(_ZEROS)]
        chunk[:] = zeros[: len(chunk)]


def read_backing(backing: Layer | None, dst: memoryview, start: int) -> None:
    """Fill ``dst`` with the parent's bytes at guest offset ``start``: past the parent's end
    (a child may have been grown), or with no parent, a layer reads zeros."""
    m = 0 if backing is None else clamp(backing.size, start, len(dst))
    if backing is not None and m:
        backing.read_into(dst[:m], start)
    if m < len(dst):
        zero_fill(dst[m:])


def bitmap_span(byte: int, bit: int, at: int, sector: int, msb_first: bool) -> tuple[int, bool]:
    """One step through a sector bitmap (VHD, VHDX): from byte ``at`` of a block, whose
    sector is bit ``bit`` (0-7) of bitmap byte ``byte``, how many bytes read from one place,
    and whether that is this file (a set bit) or the parent. A byte all set or all clear
    covers the rest of its eight sectors at once, any other byte the rest of this sector.
    ``msb_first``: bit 7 of a byte is its first sector (VHD), else bit 0 (VHDX)."""
    if byte in (0, 0xFF):
        return (8 - bit) * sector - at % sector, byte == 0xFF
    return sector - at % sector, bool(byte >> (7 - bit if msb_first else bit) & 1)


def add_run(
    runs: list[Run], kind: int, start: int, n: int, file: SourceFile | None, host: int
) -> None:
    """Append a piece to ``runs``, merging it into the last run when they continue each other."""
    if runs:
        k, s, m, f, h = runs[-1]
        if k == kind and kind != COMPRESSED and (kind != DATA or (f is file and h + m == host)):
            runs[-1] = (k, s, m + n, f, h)
            return
    runs.append((kind, start, n, file, host))


_TABLE_IDS = iter(range(1 << 62))
_TABLE_IDS_LOCK = threading.Lock()


def cache_key() -> int:
    """A key no other table in any cache uses (a cache may hold pieces of many tables)."""
    with _TABLE_IDS_LOCK:
        return next(_TABLE_IDS)


def le32_array(data: bytes, big_endian: bool = False) -> array[int]:
    """Unsigned 32-bit entries of ``data`` in host order."""
    table = array("I", data)
    if table.itemsize != 4:  # not on the platforms Python supports today
        return array("L", struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data))
    if big_endian == (sys.byteorder == "little"):
        table.byteswap()
    return table


@dataclass(eq=False)
class Table:
    """``count`` integer entries of ``fmt`` ("<I", ">I", "<Q") at ``offset`` of ``file``.

    The caller has checked that the table lies inside the file; pieces are read when an
    entry in them is first asked for.
    """

    file: SourceFile
    offset: int
    count: int
    fmt: InitVar[str]
    what: str
    _cache: MetadataCache

    def __post_init__(self, fmt: str) -> None:
        self._code = {"I": "I", "Q": "Q"}[fmt[1]]
        self._swap = (fmt[0] == ">") == (sys.byteorder == "little")
        self._size = struct.calcsize(fmt)
        self._per_piece = PIECE // self._size
        self._id = cache_key()

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.count:
            raise CorruptImageError(f"{self.what} entry {index} is outside the table")
        p, i = divmod(index, self._per_piece)
        piece = self._cache.get((self._id, p))
        if piece is None:
            piece = self._load(p)
        return cast("array[int]", piece)[i]

    def _load(self, p: int) -> array[int]:
        first = p * self._per_piece
        n = min(self._per_piece, self.count - first)
        data = self.file.pread(self.offset + first * self._size, n * self._size, self.what)
        piece = array(self._code, data)
        if piece.itemsize != self._size:  # the platform's "I" is not 4 bytes
            piece = array(self._code, struct.unpack(f"<{n}{self._code}", data))
        elif self._swap:
            piece.byteswap()
        self._cache.put((self._id, p), piece, n * self._size)
        return piece


class MappedLayer(SizedReader):
    """Base of the VMDK, VHD and VHDX layers: reads through ``_runs``, the parent, zeros."""

    backing: Layer | None
    name: str  # the file's path in the repository, for messages

    def _runs(self, offset: int, end: int) -> list[Run]:
        raise NotImplementedError

    def _fill_compressed(self, dst: memoryview, start: int, host: int) -> None:
        raise CorruptImageError(f"{self.name}: compressed data in a format without compression")

    def _read(self, offset: int, n: int) -> bytes:
        with naming_file(self.name, CorruptImageError):
            runs = self._runs(offset, offset + n)
            if len(runs) == 1 and runs[0][0] == DATA:
                file = runs[0][3]
                assert file is not None
                return file.pread(runs[0][4], n, "data")
            buf = bytearray(n)
            self._fill(memoryview(buf), offset, runs)
            return bytes(buf)

    def read_into(self, dst: memoryview, offset: int) -> None:
        """Fill ``dst`` with the guest bytes at ``offset`` (the chain fills one buffer)."""
        with naming_file(self.name, CorruptImageError):
            self._fill(dst, offset, self._runs(offset, offset + len(dst)))

    def _fill(self, view: memoryview, offset: int, runs: list[Run]) -> None:
        for kind, start, length, file, host in runs:
            dst = view[start - offset : start - offset + length]
            if kind == DATA:
                assert file is not None
                file.pread_into(dst, host, "data")
            elif kind == UNALLOCATED:
                read_backing(self.backing, dst, start)
            elif kind == COMPRESSED:
                self._fill_compressed(dst, start, host)
            else:
                zero_fill(dst)
