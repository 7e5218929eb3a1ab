"""The backing chain: which file a backing name means, and whether it may be opened.

# References: QEMU docs/interop/qcow2.txt ("backing_file_offset", "Backing file format name
# string", "External data file name string"); QEMU block.c path_has_protocol() and
# bdrv_get_full_backing_filename_from_filename() for what counts as a protocol and what a
# relative name is relative to.

Rules (the chain is resolved here, never by QEMU or a library):

- Every file of the chain, the top image included, is opened through the repository's store
  (:mod:`filerestore.source`), which walks down from the root's descriptor and never leaves
  the root, so a name or a symbolic link pointing outside is refused at the moment of the
  open, with no window between a check and the open.
- A backing name is a plain file name. Anything with a ``scheme:`` before its first ``/``
  (``json:``, ``nbd:``, ``http:``, ``file:`` ...) is refused, as is a NUL byte.
- A relative name is relative to the directory of the image that names it, as in QEMU; an
  absolute one must lie under the repository root's path.
- A QCOW2 file's external data file is named and opened by these same rules (see
  :mod:`filerestore.image.qcow2_data_file` for what it holds); it is a part of that disk,
  not a file of the chain (it counts for neither loops nor depth).
- VMDK, VHD and VHDX name their parent in their own way (``parentFileNameHint``, parent
  locators: see those modules, which map Windows names and refuse what they cannot place);
  the name then follows every rule here. Their parent must also carry the identity the
  child recorded (VMDK CID, VHD unique id, VHDX data write GUID), else it was changed since.
- The header's backing-format extension says how to read the backing file. A file declared
  ``raw`` is never probed. With no declaration (images from old qemu-img), the magic decides,
  as QEMU does; every check above still applies to whatever it is read as.
- The top image is a QCOW2 image by its magic, or a raw disk image only when its name says
  so (``*.raw``, ``*.img``, as given or after links): any other file (a README, a failed
  backup's leftover) is not a backup, and an empty file is never a disk image. A backing
  file with no declared format is probed as QEMU probes it (no known magic: raw).
- An empty backing name (``backing_file_offset`` set, size 0) means no backing file, as in
  QEMU, whose bdrv_open_backing_file() opens nothing for an empty ``backing_file``.
- A file already in the chain (same inode) is a loop; more files than ``max_chain_depth``
  (the top one counted) is too deep. Both are refused before the file is parsed.
- Messages name files by their path inside the repository, never by a host path.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from filerestore.errors import (
    BackingChainLoopError,
    BackingChainTooDeepError,
    BackingFileRefusedError,
    CorruptImageError,
    FileRestoreError,
    ImageNotFoundError,
    NotAnImageError,
    ObjectChangedError,
    RepositoryEscapeError,
    UnsupportedImageError,
)
from filerestore.image import formats
from filerestore.image.metadata import DEFAULT_METADATA_BUDGET, check_budget, layer_working_set
from filerestore.image.names import qemu_name
from filerestore.image.qcow2_header import MAX_CLUSTER_BITS, Qcow2Info, parse_first_cluster
from filerestore.source import SourceFile, Store

if TYPE_CHECKING:  # the other formats' modules load when a file of theirs is met
    from filerestore.image.format_link import FormatLink, LayerBuilder

_FIRST_READ = 64 * 1024
#: names that make a file without an image signature a raw disk image
RAW_SUFFIXES = (".raw", ".img")


@dataclass(frozen=True)
class ChainLink:
    """One file of a backing chain, as its header describes it."""

    #: where the file is, for operators: a host path, or an s3://bucket/key URL (a string:
    #: a Path would fold the URL's "//")
    location: str
    format: str  # "qcow2" | "raw" | "vmdk" | "vpc" | "vhdx" (QEMU's driver names)
    virtual_size: int
    backing_name: str | None = None  # as stored in the header
    backing_format: str | None = None  # from the backing-format extension
    version: int | None = None
    cluster_size: int | None = None
    compression: str | None = None  # "zlib" | "zstd"
    name: str = ""  # the file's path inside the repository (links resolved)
    modified: float = 0.0  # st_mtime of the file when it was opened
    subformat: str | None = None  # VMDK createType, VHD/VHDX disk type
    #: the other files this disk is made of (VMDK extents, a QCOW2 external data file),
    #: paths inside the repository
    parts: tuple[str, ...] = ()
    identity: str | None = None  # VMDK CID, VHD unique id, VHDX data write GUID
    parent_identity: str | None = None  # the identity its parent must have
    data_file: str | None = None  # a QCOW2 external data file's name, as stored in the header
    data_file_raw: bool = False  # the data file is the guest disk as a raw image


@dataclass
class OpenedLink:
    link: ChainLink
    file: SourceFile
    info: Qcow2Info | None
    layer: LayerBuilder | None = None  # formats other than qcow2 and raw
    parts: list[SourceFile] = field(default_factory=list)
    working_set: int = 0  # least bytes of its tables a read needs at once (not qcow2)
    data_file: SourceFile | None = None  # a QCOW2 file's external data file

    @property
    def files(self) -> list[SourceFile]:
        """Every file this link reads: itself, its extents, its data file."""
        return [self.file, *self.parts, *([self.data_file] if self.data_file else [])]

    def close(self) -> None:
        for f in self.files:
            f.close()


def _read_first_cluster(file: SourceFile) -> bytes:
    head = file.pread(0, min(file.size, _FIRST_READ), "header")
    if len(head) >= 24:
        cluster_bits = int.from_bytes(head[20:24], "big")
        if cluster_bits <= MAX_CLUSTER_BITS:
            want = min(file.size, 1 << cluster_bits)
            if want > len(head):
                head = file.pread(0, want, "header")
    return head


def _detect_format(file: SourceFile, head: bytes) -> str:
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    return formats.detect(file, head) or "raw"


def _format_link(file: SourceFile, f: FormatLink) -> OpenedLink:
    link = ChainLink(
        location=file.location,
        format=f.format,
        virtual_size=f.virtual_size,
        backing_name=f.backing_name,
        backing_format=f.backing_format,
        cluster_size=f.cluster_size,
        name=file.name,
        modified=file.mtime,
        subformat=f.subformat,
        parts=tuple(p.name for p in f.files),
        identity=f.identity,
        parent_identity=f.parent_identity,
    )
    return OpenedLink(link, file, None, f.build, f.files, f.working_set)


def _check_parent(child: ChainLink, parent: ChainLink) -> None:
    """A VMDK, VHD or VHDX child names the identity of the parent it was made on."""
    if child.parent_identity is not None and parent.identity != child.parent_identity:
        raise CorruptImageError(
            f"{child.name}: parent {parent.name} is not the disk it was made on (its id is "
            f"{parent.identity}, the child expects {child.parent_identity}): it was changed "
            "or replaced since"
        )


def _check_raw_top(file: SourceFile, given: str) -> None:
    """Refuse a top image without a signature unless its name says it is a raw disk."""
    if file.size == 0:
        raise NotAnImageError(f"{given}: empty file, not a disk image")
    if not (given.endswith(RAW_SUFFIXES) or file.name.endswith(RAW_SUFFIXES)):
        raise NotAnImageError(
            f"{given}: not a disk image (no QCOW2, VMDK, VHD or VHDX signature, and a raw "
            f"disk image must be named *{' or *'.join(RAW_SUFFIXES)})"
        )


def _open_link(
    store: Store, file: SourceFile, declared: str | None, top: str | None = None
) -> OpenedLink:
    """Open one file of the chain; ``top`` is the name the top image was given by."""
    name, location = file.name, file.location
    try:
        raw = ChainLink(location, "raw", file.size, name=name, modified=file.mtime)
        if declared == "raw":
            return OpenedLink(raw, file, None)
        head = _read_first_cluster(file)
        fmt = _detect_format(file, head) if declared is None else declared
        if fmt == "raw":
            if top is not None:
                _check_raw_top(file, top)
            return OpenedLink(raw, file, None)
        if fmt in formats.OPENERS:
            return _format_link(file, formats.open_format(store, file, fmt, head))
        if fmt != "qcow2":
            raise UnsupportedImageError(f"{name}: backing format {fmt!r} is not supported")
        try:
            info = parse_first_cluster(head, file.size)
        except (CorruptImageError, UnsupportedImageError) as exc:
            raise type(exc)(f"{name}: {exc}") from exc
        h = info.header
        backing = (
            None
            if info.backing_name is None
            else qemu_name(info.backing_name, "backing file", name)
        )
        data_name = None
        if h.has_data_file:
            assert info.extensions.data_file  # parse_first_cluster refuses a missing name
            data_name = qemu_name(info.extensions.data_file, "data file", name)
        link = ChainLink(
            location=location,
            format="qcow2",
            virtual_size=h.size,
            backing_name=backing,
            # as qemu-img info: no backing format without a backing file
            backing_format=None if backing is None else info.extensions.backing_format,
            version=h.version,
            cluster_size=h.cluster_size,
            compression=h.compression,
            name=name,
            modified=file.mtime,
            data_file=data_name,
            data_file_raw=h.data_file_is_raw,
        )
        if data_name is None:
            return OpenedLink(link, file, info)
        data = _open_named(store, data_name, name, "data file")
        try:
            # imported for an image with a data file only (CLI start-up, issue 14)
            from filerestore.image.qcow2_data_file import check_data_file

            check_data_file(h, data, name)
        except BaseException:
            data.close()
            raise
        link = replace(link, parts=(data.name,))
        return OpenedLink(link, file, info, data_file=data)
    except BaseException:
        file.close()
        raise


def _open_named(store: Store, named: str, current: str, what: str) -> SourceFile:
    """Open the file ``current`` names as its ``what`` ("backing file", "data file")."""
    try:
        return store.open(named, relative_to=current)
    except RepositoryEscapeError as exc:
        raise BackingFileRefusedError(f"{current}: {what} {named!r}: {exc}") from exc
    except ImageNotFoundError as exc:
        raise ImageNotFoundError(f"{current}: {what} {named!r}: {exc}") from exc


def open_chain(
    store: Store,
    name: str,
    max_depth: int,
    budget: int = DEFAULT_METADATA_BUDGET,
    *,
    confirm: bool = True,
) -> list[OpenedLink]:
    """Open and validate every file of the chain of ``name``, top first, through ``store``;
    the caller closes the files. A chain whose tables cannot be read within ``budget``
    bytes is refused as soon as the files opened so far exceed it.

    A store may open a file from what it remembered of it (an S3 block cache) and check in
    the background that it is still current; the chain is returned once every check has
    passed, or with ``confirm=False`` at once, and the caller must then call
    :func:`confirm_chain` before it trusts anything read (it can overlap the checks'
    round trip with its own reading). A failure met before the checks are in is blamed
    on a changed file when one did change; the walk is then made once more.
    """
    try:
        return _open_chain_once(store, name, max_depth, budget, confirm)
    except ObjectChangedError:
        # the store has forgotten the changed file: the walk reads the new version
        return _open_chain_once(store, name, max_depth, budget, confirm)


def confirm_chain(files: list[SourceFile], wait: bool = True) -> None:
    """Wait until every file is known to be current (ObjectChangedError if one is not);
    ``wait=False``: see :meth:`SourceFile.confirm <filerestore.source.SourceFile>`."""
    for f in files:
        f.confirm(wait)


def _changed(files: list[SourceFile]) -> ObjectChangedError | None:
    """The error of the first file found replaced since it was opened, if any."""
    for f in files:
        try:
            f.confirm()
        except ObjectChangedError as exc:
            return exc
        except FileRestoreError:
            continue  # the check itself failed: the original error stands
    return None


def _close(chain: list[OpenedLink], files: list[SourceFile]) -> None:
    """Close every file opened: the chain's (with their extents) and one not yet in it."""
    for opened in chain:
        opened.close()
    for f in files:
        f.close()


def _open_chain_once(
    store: Store, name: str, max_depth: int, budget: int, confirm: bool
) -> list[OpenedLink]:
    chain: list[OpenedLink] = []
    files: list[SourceFile] = []  # every file opened, even one not yet in the chain
    seen: set[object] = set()
    needed = qcow2_files = 0
    try:
        file = store.open(name)
        files.append(file)
        declared: str | None = None
        top: str | None = name
        while True:
            seen.add(file.identity)
            opened = _open_link(store, file, declared, top)
            top = None
            chain.append(opened)
            if len(chain) > 1:
                _check_parent(chain[-2].link, opened.link)
            if opened.info is not None or opened.layer is not None:
                if opened.info is not None:
                    needed += layer_working_set(opened.info.header)
                    qcow2_files += 1
                needed += opened.working_set  # VMDK, VHD, VHDX: their table pieces
                check_budget(chain[0].link.name, needed, qcow2_files, budget)
            backing = opened.link.backing_name
            if backing is None:
                if confirm:
                    confirm_chain([*files, *(o.data_file for o in chain if o.data_file)])
                return chain
            current = opened.link.name
            file = _open_named(store, backing, current, "backing file")
            files.append(file)
            if file.identity in seen:
                file.close()
                raise BackingChainLoopError(
                    f"{current}: backing file {backing!r} ({file.name}) is already in the chain"
                )
            if len(chain) >= max_depth:
                file.close()
                raise BackingChainTooDeepError(
                    f"backing chain of {chain[0].link.name} is deeper than the limit of "
                    f"{max_depth} files"
                )
            declared = opened.link.backing_format
    except FileRestoreError as exc:
        # read from a remembered version: a changed file explains what went wrong
        changed = None if isinstance(exc, ObjectChangedError) else _changed(files)
        _close(chain, files)
        if changed is not None:
            raise changed from exc
        raise
    except BaseException:
        _close(chain, files)
        raise
