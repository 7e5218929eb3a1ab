"""What a restore does when the destination already holds an entry by the same name.

- ``skip``: the existing entry stays; the restored one is recorded as skipped;
- ``rename``: the restored entry is written beside it under the first free name of
  ``<stem>.restored-<n><suffix>`` (``report.txt`` -> ``report.restored-1.txt``);
- ``overwrite``: a file, symbolic link or other non-directory is removed (a link itself,
  never what it points to) and the restored entry written in its place; a directory is
  never removed: a restored file whose name a directory holds fails with that reason.

Directories are always merged: a restored directory whose name an existing directory holds
is entered and filled. Its own mode, owner and times are set only when the job created it
(or under ``overwrite``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

#: candidates tried before a rename gives up (a directory holding this many is refused)
MAX_RENAMES = 1000


class Policy(StrEnum):
    SKIP = "skip"
    RENAME = "rename"
    OVERWRITE = "overwrite"


def renamed(name: bytes, n: int, name_max: int = 255) -> bytes:
    """The ``n``-th rename candidate for ``name``, kept within ``name_max`` bytes."""
    dot = name.rfind(b".")
    stem, suffix = (name[:dot], name[dot:]) if dot > 0 else (name, b"")
    tag = b".restored-%d" % n
    if len(suffix) + len(tag) >= name_max:
        stem, suffix = name, b""
    room = name_max - len(tag) - len(suffix)
    return stem[:room] + tag + suffix


def free_name(name: bytes, taken: Callable[[bytes], bool], name_max: int = 255) -> bytes | None:
    """The first rename candidate for which ``taken`` is False; None after MAX_RENAMES."""
    for n in range(1, MAX_RENAMES + 1):
        candidate = renamed(name, n, name_max)
        if not taken(candidate):
            return candidate
    return None
