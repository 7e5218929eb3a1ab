"""QCOW2 harness: the input is a whole image file, opened as the top of a backing chain.

Header and extensions, the L1 and L2 tables (standard and extended entries), zero, normal,
unallocated (read through to the backing file) and compressed clusters (zlib, zstd): the
seeds are small qemu-img images of each kind, the overlays naming ``base.qcow2``, which
lies beside the input in a repository on tmpfs.

Per input: ``probe_chain`` (headers only), then ``open_image`` and reads of the guest disk,
all of it when it is small (in 64 KiB pieces and in one read, which must agree: the
cluster runs are coalesced differently), else its start, middle and end.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from filerestore.errors import ImageError, NotFoundError
from filerestore.image import open_image, probe_chain
from fuzz.harness import Harness, OneInput, require
from tests.imagebuild import fuzz_seeds as seeds

WHOLE = 1 << 20
PIECE = 64 * 1024


def _repository() -> Path:
    where = "/dev/shm" if Path("/dev/shm").is_dir() else None
    repo = Path(tempfile.mkdtemp(prefix="fr-fuzz-qcow2-", dir=where))
    shutil.copyfile(seeds.qcow_seed("v3-64k"), repo / seeds.QCOW_BASE_NAME)
    return repo


def setup() -> OneInput:
    repo = _repository()
    top = repo / "top.qcow2"

    def one(data: bytes) -> None:
        top.write_bytes(data)
        probe_chain(top, repo)
        with open_image(top, repo) as disk:
            size = disk.size
            require(size >= 0, f"negative disk size {size}")
            if size <= WHOLE:
                whole = disk.read_at(0, size)
                require(len(whole) == size, f"read {len(whole)} of {size} bytes")
                pieces = b"".join(disk.read_at(o, PIECE) for o in range(0, size, PIECE))
                require(pieces == whole, "piecewise reads differ from one whole read")
            else:
                for offset in (0, size // 2 - 1000, size - PIECE):
                    got = disk.read_at(offset, 2 * PIECE)
                    want = min(2 * PIECE, size - offset)
                    require(len(got) == want, f"read {len(got)} of {want} at {offset}")

    return one


def _seeds() -> list[bytes]:
    builders = [seeds.qcow_seed(n) for n in seeds.QCOW_SEEDS]
    builders += [seeds.qcow_overlay_seed(False), seeds.qcow_overlay_seed(True)]
    return [p.read_bytes() for p in builders]


HARNESS = Harness(
    name="qcow2",
    doc="qcow2: whole image files (header, L1/L2, compressed clusters, backing chain)",
    setup=setup,
    seeds=_seeds,
    expected=(ImageError, NotFoundError),  # a hostile chain is an ImageError
    max_len=600 * 1024,
    dictionary=(
        b"QFI\xfb",
        b"\xe2\x79\x2a\xca",  # backing format extension
        b"\x68\x03\xf8\x57",  # feature name table
        b"\x44\x41\x54\x41",  # external data file
        b"base.qcow2",
        b"qcow2",
        b"raw",
    ),
)
