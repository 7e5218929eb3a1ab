"""The contract every repository store keeps: what ``open`` returns and what it promises.

A store opens a file of a repository by its name there (a catalog path, a backing name) and
returns a :class:`SourceFile`: a blockio reader that also names what it reads, so the image
layer above can report a short file as corrupt with the structure's name and tell two names
of one file apart. ``local`` (a host directory) and ``s3`` (an S3-compatible bucket under a
prefix) keep it; the image layer is typed against these protocols, never an implementation.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol


class SourceFile(Protocol):
    """A file of a repository, opened for reading; close it when done.

    - ``name``: its canonical name inside the repository (links resolved, ``..`` folded),
      the name messages use; ``location``: where it is for operators (a host path, an
      ``s3://bucket/key`` URL), never shown to other users.
    - ``identity``: equal for two names of the same file (a loop in a chain is one file
      seen twice), different for a file replaced since (another inode, another ETag);
      ``signature``: changes whenever the file's bytes may have (inode, size and times on
      disk; the ETag in S3); ``mtime``: its modification time (Last-Modified in S3).
    - ``read_at`` / ``read_into`` keep the blockio Reader contract; ``pread`` and
      ``pread_into`` name ``what`` is read, so a file too short for a structure it should
      hold raises CorruptImageError naming it, never returns zeros.
    - ``confirm()`` returns once the file is known to be the current version of its name.
      A store may open a file from what it remembered of an earlier open (a block cache)
      and check that in the background; the chain calls ``confirm`` on every file before it
      trusts what it read, and a file replaced since raises ObjectChangedError.
      ``confirm(wait=False)`` lets such a store return before its check has answered:
      it then makes every read of the file after an answer of "replaced" raise
      ObjectChangedError. A caller explaining a failure waits (the default).
    """

    @property
    def name(self) -> str: ...

    @property
    def location(self) -> str: ...

    @property
    def identity(self) -> Hashable: ...

    @property
    def signature(self) -> Hashable: ...

    @property
    def mtime(self) -> float: ...

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes: ...

    def read_into(self, dst: memoryview, offset: int) -> None: ...

    def pread(self, offset: int, length: int, what: str) -> bytes: ...

    def pread_into(self, buffer: memoryview, offset: int, what: str) -> None: ...

    def confirm(self, wait: bool = True) -> None: ...

    def close(self) -> None: ...


class FileStat(Protocol):
    """A file of a repository as a status check sees it: its canonical ``name`` and the
    ``signature`` an open of it now would give, found without reading it."""

    @property
    def name(self) -> str: ...

    @property
    def signature(self) -> Hashable: ...


class Store(Protocol):
    """The files of one repository, opened only inside it. Close when done.

    ``open(name, relative_to)``: ``name`` relative to the directory of the store file
    ``relative_to`` (a backing name is relative to the image naming it), else to the
    repository root; an absolute name must lie under the root. A name that leaves the
    repository, names another bucket or a protocol (``s3://``, ``http:``), or holds a NUL
    byte raises RepositoryEscapeError; a missing file ImageNotFoundError; an unreachable
    repository a ServiceUnavailableError subclass. ``stat`` finds a file by the same rules
    and raises the same errors, reading nothing of it.
    """

    def open(self, name: str, relative_to: str | None = None) -> SourceFile: ...

    def stat(self, name: str, relative_to: str | None = None) -> FileStat: ...

    def close(self) -> None: ...
