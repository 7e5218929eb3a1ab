"""A file's holes kept as holes in a TAR: the GNU sparse format 1.0 in a PAX header.

# Reference: GNU tar manual, "Storing Sparse Files" (format 1.0, in PAX extended headers),
# which GNU tar (since 1.15.92), bsdtar and the stdlib's tarfile read.

A member whose file has holes is written with these PAX records:
``GNU.sparse.major=1``, ``GNU.sparse.minor=0``, ``GNU.sparse.name`` (the real name) and
``GNU.sparse.realsize`` (the file's size). Its ustar name is ``GNUSparseFile.0/...``, the
convention that keeps an extractor that does not know the format from writing the map and
the data under the file's real name. The member's data area starts with the sparse map, in
decimal, each number followed by a newline (the number of regions, then each region's
offset and length), padded with zeros to a whole block; then each region's bytes, in order.
When the file ends in a hole, a last region of length 0 at its size says where it ends.

Where the data is comes from the filesystem (``FileContents.data_ranges()``); a reader that
cannot tell reports the whole file as data, and such a file is written as an ordinary
member. So is a file whose holes add up to less than :data:`MIN_HOLES` (not worth the
unusual member), and one with more than :data:`MAX_REGIONS` regions (the map is built
before the header, in memory: a bound).
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from filerestore.fs.contents import FileContents, merged
from filerestore.restore.file_data import read_chunks

BLOCK = tarfile.BLOCKSIZE
MIN_HOLES = 1 << 20  # bytes of holes a file needs before it is worth a sparse member
MAX_REGIONS = 65_536  # data regions one sparse member may list
#: the largest data area a ustar size field holds; a larger one would need a PAX ``size``
#: record, which some readers let override ``GNU.sparse.realsize``
MAX_AREA = 8**11 - 1


@dataclass(frozen=True, slots=True)
class SparseLayout:
    """A file's data regions ``(offset, length)`` and the map that lists them."""

    regions: list[tuple[int, int]]
    size: int

    @property
    def map_bytes(self) -> bytes:
        listed = list(self.regions)
        if not listed or sum(listed[-1]) < self.size:
            listed.append((self.size, 0))  # the file ends in a hole: say where it ends
        numbers = [len(listed)] + [n for region in listed for n in region]
        text = "".join(f"{n}\n" for n in numbers).encode("ascii")
        return text + bytes(-len(text) % BLOCK)

    @property
    def data_bytes(self) -> int:
        return sum(length for _, length in self.regions)

    @property
    def area(self) -> int:
        """Bytes of the member's data area: the padded map, then the regions."""
        return len(self.map_bytes) + self.data_bytes


def sparse_layout(reader: FileContents, size: int) -> SparseLayout | None:
    """The layout of a file worth a sparse member, or None (see the module docstring)."""
    regions: list[tuple[int, int]] = []
    for region in merged(reader.data_ranges(), size):
        regions.append(region)
        if len(regions) > MAX_REGIONS:
            return None
    layout = SparseLayout(regions, size)
    if size - layout.data_bytes < MIN_HOLES or layout.area > MAX_AREA:
        return None
    return layout


def sparse_info(info: tarfile.TarInfo, layout: SparseLayout, index: int) -> tarfile.TarInfo:
    """``info`` (an ordinary file member's header) as the header of its sparse member;
    ``index`` tells apart the placeholder names of members without a short ASCII name."""
    real = info.name
    placeholder = posixpath.join(
        posixpath.dirname(real), "GNUSparseFile.0", posixpath.basename(real)
    )
    if not placeholder.isascii() or len(placeholder) > 100:
        placeholder = f"GNUSparseFile.0/{index}"  # no PAX "path" record to override the name
    sparse = tarfile.TarInfo(placeholder)
    sparse.type = tarfile.REGTYPE
    sparse.mode, sparse.uid, sparse.gid = info.mode, info.uid, info.gid
    sparse.uname = sparse.gname = ""
    sparse.mtime = info.mtime
    sparse.size = layout.area
    sparse.pax_headers = {
        **info.pax_headers,
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": real,
        "GNU.sparse.realsize": str(layout.size),
    }
    return sparse


def region_chunks(
    reader: FileContents, path: str, layout: SparseLayout, chunk_size: int
) -> Iterator[bytes]:
    """The member's data area after its map: each region's bytes, in order."""
    for offset, length in layout.regions:
        yield from read_chunks(reader, path, offset, offset + length, chunk_size)
