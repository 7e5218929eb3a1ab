"""The contract of a restore target: one directory tree that entries are written into.

A target is opened on a destination (a list of name components below the target's root,
created when missing). Every call names a directory by the handle :meth:`Target.enter`
returned and one entry by its name (bytes, one component); no call takes a joined path, so
the caller never builds a path the target would resolve through a symbolic link. A target
never follows a symbolic link it finds in the destination: a link where a directory must be
entered refuses the job (DestinationEscapeError, by name); a link where a file goes is an
existing entry like any other, which the conflict policy may replace (the link itself,
never what it points to).

Writes may complete later than the call (an SFTP target keeps many in flight):
:meth:`Target.flush` waits for every outstanding write and returns the ones that failed, by
the token given with each write. A failure of one entry costs that entry; a failure of the
connection or of the destination raises.
"""

from __future__ import annotations

import stat as stat_mod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from filerestore.errors import DestinationEscapeError
from filerestore.fs.entry import Entry

#: permission bits a restore keeps: setuid and setgid never (an image must not plant a
#: setuid program on a host), the sticky bit and rwx for all three classes
KEPT_MODE_BITS = 0o1777


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a target can keep; a job reports what it could not."""

    owners: bool
    xattrs: bool
    hardlinks: bool
    sparse: bool
    #: the finest time a target keeps, in nanoseconds (1 for ns, 10**9 for seconds)
    time_resolution_ns: int


@dataclass(frozen=True, slots=True)
class Existing:
    """What already is at a name in the destination (never followed)."""

    kind: str  # "file", "dir", "symlink", "other"
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, mode: int | None, size: int, mtime_ns: int) -> Existing:
        """What is there, by its ``st_mode`` (None: not told, "other")."""
        return cls(_kind(mode), size, mtime_ns)


def _kind(mode: int | None) -> str:
    if mode is None:
        return "other"
    if stat_mod.S_ISREG(mode):
        return "file"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    if stat_mod.S_ISLNK(mode):
        return "symlink"
    return "other"


@dataclass(frozen=True, slots=True)
class Meta:
    """The metadata written with an entry."""

    mode: int | None  # permission bits (KEPT_MODE_BITS applied)
    uid: int | None
    gid: int | None
    atime_ns: int | None
    mtime_ns: int | None
    xattrs: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, entry: Entry, xattrs: dict[str, bytes] | None = None) -> Meta:
        mode = None if entry.mode is None else stat_mod.S_IMODE(entry.mode) & KEPT_MODE_BITS
        mtime = entry.mtime_ns
        atime = entry.atime_ns if entry.atime_ns is not None else mtime
        return cls(mode, entry.uid, entry.gid, atime, mtime, xattrs or {})


@dataclass(frozen=True, slots=True)
class FileWrite:
    """A file for :meth:`Target.write_file`: its size, its data as (offset, bytes) with
    holes left out, its metadata, and the token a failure of it comes back with."""

    size: int
    chunks: Iterable[tuple[int, bytes]]
    meta: Meta
    token: int


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """A write that failed after it was handed to the target: its token and why."""

    token: int
    reason: str


class Target(Protocol):
    """A destination directory tree (see the module docstring)."""

    capabilities: Capabilities

    def describe(self) -> str:
        """Where this target writes, for the job's messages (no secrets)."""

    def root(self) -> object:
        """The handle of the destination directory itself."""

    def lookup(self, directory: object, name: bytes) -> Existing | None:
        """What is at ``name`` in ``directory``, without following a link; None if nothing."""

    def enter(self, directory: object, name: bytes, create: bool) -> object:
        """The handle of subdirectory ``name``, created (mode 0700 until its metadata is set
        at the end) when ``create`` and missing. DestinationEscapeError when ``name`` is a
        symbolic link or not a directory."""

    def remove(self, directory: object, name: bytes) -> None:
        """Remove the non-directory at ``name`` (a link is removed, never followed)."""

    def write_file(self, directory: object, name: bytes, file: FileWrite) -> None:
        """Create ``name`` (it must not exist), write ``file.chunks``, make its size
        ``file.size`` and set ``file.meta``. May finish after returning: a failure then
        comes back from :meth:`flush` with ``file.token``."""

    def symlink(self, directory: object, name: bytes, target: bytes, meta: Meta) -> None:
        """Create a symbolic link (never followed) with its owner and times."""

    def hardlink(
        self, src_directory: object, src_name: bytes, directory: object, name: bytes
    ) -> None:
        """Link ``name`` to the file at ``src_name`` (written earlier in this job)."""

    def set_dir_meta(self, directory: object, meta: Meta) -> None:
        """Set a directory's metadata (after everything below it is written)."""

    def flush(self) -> list[WriteFailure]:
        """Wait for every outstanding write; the ones that failed."""

    def close(self) -> None: ...


def destination_parts(text: str) -> list[bytes]:
    """The components of a destination below a target's root; refused by name when it
    would leave the root (``..``, an absolute path) or holds a NUL byte."""
    if "\x00" in text:
        raise DestinationEscapeError("the destination holds a NUL byte")
    if text.startswith("/"):
        raise DestinationEscapeError(
            f"the destination {text!r} is absolute: give a path inside the target"
        )
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DestinationEscapeError(f"the destination {text!r} climbs out of the target with '..'")
    return [p.encode("utf-8", "surrogateescape") for p in parts]
