"""The one entry model every filesystem kind reports."""

from __future__ import annotations

import stat as stat_mod
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class EntryKind(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    OTHER = "other"  # devices, FIFOs, sockets: listed, never read


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry with its metadata.

    ``path`` is absolute inside the guest filesystem ("/" for the root) and, given back to the
    same filesystem, resolves to this entry: names that are not valid UTF-8 are carried as
    ``str`` with surrogate escapes (``os.fsdecode`` style) so they survive the round trip.
    Times are nanoseconds since the Unix epoch (UTC); ``None`` where the format lacks them.
    ``mode`` holds the full ``st_mode`` (type and permission bits) where the format has one,
    else a mode synthesised from the kind and read-only flag.

    ``data_location`` says where a file's data is when it is not in this filesystem, so it
    cannot be read from the image (opening it raises DataNotInImageError): one of
    ``DATA_LOCATIONS`` (an NTFS reparse point owned by a cloud-files provider, Windows
    Server Data Deduplication, a WIMBoot WIM, ...). ``None`` for every file whose data is
    here, including files read by decompressing them (NTFS LZNT1 and WOF compression).
    """

    name: str
    path: str
    kind: EntryKind
    size: int
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    mtime_ns: int | None = None
    atime_ns: int | None = None
    ctime_ns: int | None = None
    btime_ns: int | None = None
    inode: int | None = None
    nlink: int | None = None
    target: str | None = None
    data_location: str | None = None

    @property
    def permissions(self) -> int | None:
        return None if self.mode is None else stat_mod.S_IMODE(self.mode)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        return data


#: values of Entry.data_location: where a file's data is kept instead of this filesystem
DATA_LOCATIONS: dict[str, str] = {
    "cloud": "a cloud-files provider (OneDrive and other sync clients, Azure File Sync): "
    "the file is online-only",
    "dedup": "the Windows Server Data Deduplication chunk store",
    "wim": "an external WIM file (WIMBoot)",
    "hsm": "a hierarchical storage manager (Remote Storage)",
    "sis": "the Single Instance Storage common store",
    "projfs": "a Projected File System provider",
    "container": "a container image layer (Windows Container Isolation)",
    "reparse": "the owner of an unknown reparse point (nothing of it is on this disk)",
}


def kind_from_mode(mode: int) -> EntryKind:
    if stat_mod.S_ISDIR(mode):
        return EntryKind.DIR
    if stat_mod.S_ISREG(mode):
        return EntryKind.FILE
    if stat_mod.S_ISLNK(mode):
        return EntryKind.SYMLINK
    return EntryKind.OTHER


def synthetic_mode(kind: EntryKind, read_only: bool = False) -> int:
    """A mode for formats without Unix permissions (FAT, exFAT, NTFS)."""
    if kind is EntryKind.DIR:
        return stat_mod.S_IFDIR | (0o555 if read_only else 0o755)
    if kind is EntryKind.SYMLINK:
        return stat_mod.S_IFLNK | 0o777
    return stat_mod.S_IFREG | (0o444 if read_only else 0o644)
