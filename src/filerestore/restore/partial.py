"""A restore goes on past the entries it cannot restore, and says which and why.

One unreadable file, or one name the host cannot hold, must not cost the rest of a tree: a
restore (``get``, an archive, later a restore job) skips such an entry, records a
:class:`Failure` with the reason, finishes the rest, and reports every failure at the end
(the CLI: one line each and exit code 7; an archive: a listed ``FILERESTORE-ERRORS.txt``).

What is skipped is decided here, once: errors of one entry's data or metadata (the image is
at fault for that entry) and names or link targets the host cannot write. What stops the
whole restore: an unreachable repository or database (every later entry would fail too),
and the refusals that protect the destination (a planted symbolic link, an existing file).
"""

from __future__ import annotations

from dataclasses import dataclass

from filerestore.errors import FileRestoreError, ImageError
from filerestore.restore.names import printable

#: the member an archive lists its failures in, at its top level
ERRORS_FILE = "FILERESTORE-ERRORS.txt"


@dataclass(frozen=True, slots=True)
class Failure:
    """An entry a restore skipped: its guest path and why."""

    path: str
    reason: str


def skippable(exc: BaseException) -> bool:
    """True when ``exc``, raised for one entry, costs only that entry."""
    return isinstance(exc, ImageError)


def unaddressable(name: str) -> str | None:
    """Why an entry of this name cannot be read by its path (a corrupt directory entry), or
    None: a path made with it would name another entry, or none."""
    if name in ("", ".", ".."):
        return f"the name {name!r} is not a valid path component"
    if "/" in name or "\x00" in name:
        return "the name holds a '/' or NUL byte, so no path reaches the entry"
    return None


def failure(path: str, exc: FileRestoreError) -> Failure:
    return Failure(path, f"{exc.code}: {exc}")


def errors_text(failures: list[Failure]) -> bytes:
    """The contents of :data:`ERRORS_FILE`: a header line, then ``path<TAB>reason`` each."""
    lines = [f"{len(failures)} entries could not be restored and are missing from this archive:"]
    lines += [f"{printable(f.path)}\t{printable(f.reason)}" for f in failures]
    return ("\n".join(lines) + "\n").encode("utf-8")
