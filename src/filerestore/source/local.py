"""A repository on a host path: every file opened by walking down from the root's descriptor.

# References: openat(2), O_PATH and O_NOFOLLOW in open(2); path_resolution(7) for the
# symbolic-link rules this walk reimplements (40 links at most, as MAXSYMLINKS); proc(5)
# for reopening an O_PATH descriptor through /proc/self/fd.

Nothing is opened by a host path below the root. A name is split into components and each is
opened with ``openat(parent_fd, component, O_PATH | O_NOFOLLOW)``, so the kernel never
follows a symbolic link for us and there is no window between a check and the open that an
attacker could use by swapping a directory for a link. What the walk meets:

- a directory: descended into; ``..`` goes back up the walk's own stack of descriptors and
  is refused at the root, so a name never climbs out of the repository;
- a symbolic link: read with ``readlinkat`` and resolved by this walk under the same rules
  (a relative target from the link's directory, an absolute one only if it lies under the
  root's own path). Links that stay inside the repository are allowed, because real
  repositories use them ("latest -> 2026-11-29/disk0.qcow2"); links that leave it are
  refused by name;
- the last component: it must be a regular file. It is checked on the O_PATH descriptor,
  which opens nothing, and only then reopened for reading through ``/proc/self/fd``, which
  opens exactly that inode: a FIFO or a device swapped in is never opened.

The root itself is the operator's configuration (it may be reached through symbolic links);
its real path is taken once, when the store is created.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from filerestore.blockio import Closing, FileReader
from filerestore.errors import (
    ImageNotFoundError,
    RepositoryEscapeError,
    RepositoryIOError,
)

MAX_SYMLINK_HOPS = 40  # Linux MAXSYMLINKS (include/linux/namei.h)
_O_PATH = getattr(os, "O_PATH", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_WALK_FLAGS = (_O_PATH or os.O_RDONLY) | os.O_NOFOLLOW | _O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | _O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)
_PROC_FD = Path("/proc/self/fd")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What makes two names the same file (a loop in a chain is a file seen twice)."""

    device: int
    inode: int


@dataclass(frozen=True, slots=True)
class FileSignature:
    """What changes when a file is replaced or rewritten: inode, size, mtime and ctime (a
    rename, a chmod or a write moves the ctime)."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileSignature:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class StoreStat:
    """A repository file as a status check sees it: canonical name and ``fstat``."""

    name: str
    stat: os.stat_result

    @property
    def identity(self) -> FileIdentity:
        return FileIdentity(self.stat.st_dev, self.stat.st_ino)

    @property
    def signature(self) -> FileSignature:
        return FileSignature.of(self.stat)


class StoreFile(FileReader):
    """A regular file of a repository, opened for reading; ``name`` is its canonical path
    relative to the repository root (symbolic links resolved), ``identity`` its inode."""

    def __init__(self, fd: int, name: str, location: str) -> None:
        # FileReader opens by path; a StoreFile adopts the descriptor the walk opened. Its
        # messages name the file by its repository path, never by the host path.
        self.path = Path(name)
        self.name = name
        self.location = location
        self._fd = fd
        st = os.fstat(fd)
        self._size = st.st_size
        self.mtime = st.st_mtime
        self.identity = FileIdentity(st.st_dev, st.st_ino)
        self.signature = FileSignature.of(st)

    def confirm(self, wait: bool = True) -> None:
        """Nothing to wait for: the descriptor is the inode the walk checked."""


class LocalStore(Closing):
    """The files of one repository directory, opened only inside it. Close when done."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.realpath(root))
        try:
            self._root_fd = os.open(
                self.root, (_O_PATH or os.O_RDONLY) | os.O_DIRECTORY | _O_CLOEXEC
            )
        except FileNotFoundError:
            # no host path: the message may reach users who must not learn the layout
            raise ImageNotFoundError("the repository root does not exist") from None
        except OSError as exc:
            raise RepositoryIOError(f"cannot open the repository root: {exc.strerror}") from exc

    @classmethod
    def for_image(
        cls, image: str | os.PathLike[str], repository: str | os.PathLike[str] | None
    ) -> tuple[LocalStore, str]:
        """The store and the name of ``image`` in it, for an image named on a command line.

        With ``repository`` the image must lie inside it: its name is taken relative to the
        root as written, and the walk then confines every link. Without it the operator's
        own path is trusted and the image's real directory is the root its chain must
        stay inside.
        """
        given = Path(os.path.normpath(Path(image).absolute()))
        if repository is None:
            real = Path(os.path.realpath(given))
            return cls(real.parent), real.name
        root = Path(os.path.normpath(Path(repository).absolute()))
        store = cls(root)
        for candidate in (root, store.root):  # as written, or through the root's real path
            if given.is_relative_to(candidate) and given != candidate:
                return store, given.relative_to(candidate).as_posix()
        store.close()
        raise RepositoryEscapeError(f"{Path(image).name} is not inside the repository")

    # --- opening ---------------------------------------------------------------------------

    def open(self, name: str, relative_to: str | None = None) -> StoreFile:
        """Open ``name`` for reading: relative to the directory of the store file
        ``relative_to`` (a backing name is relative to the image naming it), else to the
        root; an absolute name must lie under the root's path."""
        base = [] if relative_to is None else list(PurePosixPath(relative_to).parent.parts)
        return self._walk(name, base, self._open_checked)

    def stat(self, name: str, relative_to: str | None = None) -> StoreStat:
        """The canonical name and ``fstat`` of the regular file ``name`` (found as
        :meth:`open` finds it), opening nothing for reading: for status checks that must
        apply the same rules as the open that follows."""
        base = [] if relative_to is None else list(PurePosixPath(relative_to).parent.parts)
        return self._walk(name, base, self._stat_checked)

    def location(self, name: str) -> str:
        """Where a store name is on the host (for operators; never shown to other users)."""
        return str(self.root / name)

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    # --- the walk --------------------------------------------------------------------------

    def _open_checked(self, path_fd: int, dir_fd: int, part: str, here: str) -> StoreFile:
        return StoreFile(self._reopen(path_fd, dir_fd, part, here), here, self.location(here))

    @staticmethod
    def _stat_checked(path_fd: int, dir_fd: int, part: str, here: str) -> StoreStat:
        try:
            return StoreStat(here, os.fstat(path_fd))
        finally:
            os.close(path_fd)

    def _walk(self, name: str, base: list[str], finish: Callable[[int, int, str, str], T]) -> T:
        if "\0" in name:
            raise RepositoryEscapeError(f"file name {name!r} contains a NUL byte")
        if not name or name.endswith("/"):
            raise ImageNotFoundError(f"{name!r} does not name a file")
        # (component name, descriptor); index 0 is the root, never closed here
        stack: list[tuple[str, int]] = [("", self._root_fd)]
        pending = self._components(name, base)
        hops = 0
        try:
            while pending:
                part = pending.pop(0)
                if part in ("", "."):
                    continue
                if part == "..":
                    if len(stack) == 1:
                        raise RepositoryEscapeError(
                            f"{name!r} is outside the repository (it climbs above the root)"
                        )
                    os.close(stack.pop()[1])
                    continue
                here = "/".join([*(p for p, _ in stack[1:]), part])
                fd = self._open_component(stack[-1][1], part, here)
                mode = os.fstat(fd).st_mode
                if stat.S_ISLNK(mode):
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        os.close(fd)
                        raise RepositoryEscapeError(
                            f"{name!r}: more than {MAX_SYMLINK_HOPS} symbolic links on the way "
                            "(a loop of links)"
                        )
                    target = self._readlink(fd, here)
                    pending = self._link_target(target, name, here, stack) + pending
                    continue
                if stat.S_ISDIR(mode):
                    if not pending:
                        os.close(fd)
                        raise ImageNotFoundError(f"{here} is a directory, not an image file")
                    stack.append((part, fd))
                    continue
                if pending:
                    os.close(fd)
                    raise ImageNotFoundError(f"{here} is not a directory")
                if not stat.S_ISREG(mode):
                    os.close(fd)
                    raise RepositoryEscapeError(f"{here} is not a regular file")
                return finish(fd, stack[-1][1], part, here)
            raise ImageNotFoundError(f"{name!r} does not name a file")
        finally:
            for _, fd in stack[1:]:
                os.close(fd)

    def _components(self, name: str, base: list[str]) -> list[str]:
        path = PurePosixPath(name)
        if not path.is_absolute():
            return [*base, *path.parts]
        inside = self._under_root(path)
        if inside is None:
            raise RepositoryEscapeError(f"{name!r} is outside the repository")
        return inside

    def _under_root(self, path: PurePosixPath) -> list[str] | None:
        """The components of an absolute host path below the root, or None outside it."""
        root = PurePosixPath(self.root)
        if path == root:
            return []
        if not path.is_relative_to(root):
            return None
        return list(path.relative_to(root).parts)

    def _link_target(
        self, target: str, name: str, link: str, stack: list[tuple[str, int]]
    ) -> list[str]:
        if "\0" in target or not target:
            raise RepositoryEscapeError(f"{name!r}: symbolic link {link} has an invalid target")
        path = PurePosixPath(target)
        if not path.is_absolute():
            return list(path.parts)
        inside = self._under_root(path)
        if inside is None:
            raise RepositoryEscapeError(
                f"{name!r}: symbolic link {link} points outside the repository"
            )
        while len(stack) > 1:  # an absolute target restarts at the root
            os.close(stack.pop()[1])
        return inside

    def _open_component(self, dir_fd: int, part: str, here: str) -> int:
        try:
            return os.open(part, _WALK_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            raise ImageNotFoundError(f"{here} not found in the repository") from None
        except NotADirectoryError:
            raise ImageNotFoundError(f"{here}: a component on the way is not a directory") from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # the name's fault, not the host's
                raise ImageNotFoundError(f"{here[:200]!r}: file name too long") from None
            raise RepositoryIOError(
                f"cannot open {here} in the repository: {exc.strerror}"
            ) from exc

    @staticmethod
    def _readlink(link_fd: int, here: str) -> str:
        """The target of the link the walk holds open (``O_PATH``): the very link it looked
        at, even if the name was swapped since."""
        try:
            return os.readlink("", dir_fd=link_fd)
        except OSError as exc:
            raise RepositoryIOError(f"cannot read link {here}: {exc.strerror}") from exc
        finally:
            os.close(link_fd)

    @staticmethod
    def _reopen(path_fd: int, dir_fd: int, part: str, here: str) -> int:
        """A readable descriptor of the very inode ``path_fd`` refers to."""
        try:
            if _O_PATH and _PROC_FD.is_dir():
                return os.open(_PROC_FD / str(path_fd), _READ_FLAGS)
            # no O_PATH or no /proc: open by name without following, then check it is the
            # same inode the walk looked at
            fd = os.open(part, _READ_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
            a, b = os.fstat(fd), os.fstat(path_fd)
            if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) or not stat.S_ISREG(a.st_mode):
                os.close(fd)
                raise RepositoryEscapeError(f"{here} changed while it was opened")
            return fd
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise ImageNotFoundError(f"{here} not found in the repository") from None
            raise RepositoryIOError(f"cannot open {here}: {exc.strerror}") from exc
        finally:
            os.close(path_fd)
