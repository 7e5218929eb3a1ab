"""The backing chain: which file a backing name means, and whether it may be opened.

# References: QEMU docs/interop/qcow2.txt ("backing_file_offset", "Backing file format name
# string"); QEMU block.c path_has_protocol() and bdrv_get_full_backing_filename_from_filename()
# for what counts as a protocol and what a relative name is relative to.

Rules (the chain is resolved here, never by QEMU or a library):

- A backing name is a plain file name. Anything with a ``scheme:`` before its first ``/``
  (``json:``, ``nbd:``, ``http:``, ``file:`` ...) is refused, as is a NUL byte.
- A relative name is relative to the directory of the image that names it, as in QEMU.
- The name is resolved with ``realpath`` (host symlinks followed) and must stay inside the
  repository root (itself resolved); only then is the file opened, as a regular file.
- The header's backing-format extension says how to read the backing file. A file declared
  ``raw`` is never probed. With no declaration (images from old qemu-img), the magic decides,
  as QEMU does; every check above still applies to whatever it is read as.
- An image already in the chain (same path or same inode) is a loop; more files than
  ``max_chain_depth`` (the top one counted) is too deep. Both are refused before opening.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from filerestore.errors import (
    BackingChainLoopError,
    BackingChainTooDeepError,
    BackingFileRefusedError,
    CorruptImageError,
    ImageNotFoundError,
    UnsupportedImageError,
)
from filerestore.image.qcow2_header import MAX_CLUSTER_BITS, Qcow2Info, parse_first_cluster
from filerestore.image.raw import ImageFile

_FIRST_READ = 64 * 1024
# Magic numbers of formats that are not raw disks, refused rather than shown as raw bytes.
_FOREIGN_MAGIC = {b"KDMV": "VMDK", b"vhdxfile": "VHDX", b"# Disk DescriptorFile": "VMDK"}


@dataclass(frozen=True)
class ChainLink:
    """One file of a backing chain, as its header describes it."""

    path: Path
    format: str  # "qcow2" | "raw"
    virtual_size: int
    backing_name: str | None = None  # as stored in the header
    backing_format: str | None = None  # from the backing-format extension
    version: int | None = None
    cluster_size: int | None = None
    compression: str | None = None  # "zlib" | "zstd"


@dataclass
class OpenedLink:
    link: ChainLink
    file: ImageFile
    info: Qcow2Info | None


def decode_backing_name(raw: bytes, image: Path) -> str:
    if b"\0" in raw:
        raise BackingFileRefusedError(f"{image}: backing file name contains a NUL byte")
    name = os.fsdecode(raw)
    head = name.split("/", 1)[0]
    if ":" in head:
        raise BackingFileRefusedError(
            f"{image}: backing file {name!r} is a protocol name ({head.split(':', 1)[0]}:), "
            "only plain file names are allowed"
        )
    return name


def resolve_backing(name: str, image: Path, root: Path) -> Path:
    """The real path ``name`` (named by ``image``) means, refused if outside ``root``."""
    # an absolute name replaces the directory, as with QEMU
    resolved = Path(os.path.realpath(image.parent / name))
    if not resolved.is_relative_to(root):
        raise BackingFileRefusedError(
            f"{image}: backing file {name!r} resolves to {resolved}, outside the repository {root}"
        )
    if not resolved.exists():
        raise ImageNotFoundError(f"{image}: backing file {name!r} not found ({resolved})")
    if not resolved.is_file():
        raise BackingFileRefusedError(f"{image}: backing file {name!r} is not a regular file")
    return resolved


def _read_first_cluster(file: ImageFile) -> bytes:
    head = file.pread(0, min(file.size, _FIRST_READ), "header")
    if len(head) >= 24:
        cluster_bits = int.from_bytes(head[20:24], "big")
        if cluster_bits <= MAX_CLUSTER_BITS:
            want = min(file.size, 1 << cluster_bits)
            if want > len(head):
                head = file.pread(0, want, "header")
    return head


def _detect_format(file: ImageFile, head: bytes) -> str:
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    for magic, name in _FOREIGN_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedImageError(f"{file.path}: {name} images are not supported")
    return "raw"


def _open_link(path: Path, declared: str | None) -> OpenedLink:
    file = ImageFile(path)
    try:
        if declared == "raw":
            return OpenedLink(ChainLink(path, "raw", file.size), file, None)
        head = _read_first_cluster(file)
        fmt = _detect_format(file, head) if declared is None else declared
        if fmt == "raw":
            return OpenedLink(ChainLink(path, "raw", file.size), file, None)
        if fmt != "qcow2":
            raise UnsupportedImageError(f"{path}: backing format {fmt!r} is not supported")
        try:
            info = parse_first_cluster(head, file.size)
        except (CorruptImageError, UnsupportedImageError) as exc:
            raise type(exc)(f"{path}: {exc}") from exc
        h = info.header
        name = None if info.backing_name is None else decode_backing_name(info.backing_name, path)
        link = ChainLink(
            path=path,
            format="qcow2",
            virtual_size=h.size,
            backing_name=name,
            backing_format=info.extensions.backing_format,
            version=h.version,
            cluster_size=h.cluster_size,
            compression=h.compression,
        )
        return OpenedLink(link, file, info)
    except BaseException:
        file.close()
        raise


def open_chain(
    path: str | os.PathLike[str], repository: str | os.PathLike[str] | None, max_depth: int
) -> list[OpenedLink]:
    """Open and validate every file of the chain, top first; the caller closes the files."""
    given = Path(path)
    if not given.exists():
        raise ImageNotFoundError(f"image not found: {given}")
    top = Path(os.path.realpath(given))
    root = Path(os.path.realpath(repository if repository is not None else given.parent))
    chain: list[OpenedLink] = []
    seen: set[tuple[int, int]] = set()
    try:
        current, declared = top, None
        while True:
            st = current.stat()
            seen.add((st.st_dev, st.st_ino))
            opened = _open_link(current, declared)
            chain.append(opened)
            name = opened.link.backing_name
            if name is None:
                return chain
            nxt = resolve_backing(name, current, root)
            nst = nxt.stat()
            if (nst.st_dev, nst.st_ino) in seen:
                raise BackingChainLoopError(
                    f"{current}: backing file {name!r} ({nxt}) is already in the chain"
                )
            if len(chain) >= max_depth:
                raise BackingChainTooDeepError(
                    f"backing chain of {top} is deeper than the limit of {max_depth} files"
                )
            current, declared = nxt, opened.link.backing_format
    except BaseException:
        for opened in chain:
            opened.file.close()
        raise
