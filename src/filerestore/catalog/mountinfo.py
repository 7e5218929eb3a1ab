"""What the host has mounted where, from ``/proc/self/mountinfo``.

# References: Linux Documentation/filesystems/proc.rst, section 3.5 "/proc/<pid>/mountinfo".

A line is: mount ID, parent ID, major:minor, root, mount point, mount options, optional
fields ending with a lone ``-``, filesystem type, mount source, super options. Paths escape
space, tab, newline and backslash as three-digit octal (``\\040``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")

#: the filesystem types the kernel reports for each kind of share
SHARE_FSTYPES: dict[str, frozenset[str]] = {
    "nfs": frozenset({"nfs", "nfs4"}),
    "cifs": frozenset({"cifs", "smb3"}),
}

_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    mount_id: int
    mount_point: str
    fstype: str
    source: str


def unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Entries of a mountinfo file, in file order (later entries mount over earlier ones)."""
    entries: list[MountEntry] = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
            entries.append(
                MountEntry(
                    mount_id=int(fields[0]),
                    mount_point=unescape(fields[4]),
                    fstype=fields[sep + 1],
                    source=unescape(fields[sep + 2]),
                )
            )
        except (ValueError, IndexError):
            continue  # a line we cannot read says nothing about our repository
    return entries


def mount_at(path: str | os.PathLike[str], entries: list[MountEntry]) -> MountEntry | None:
    """The mount whose mount point is exactly ``path`` (the topmost, if stacked)."""
    target = os.path.realpath(path)
    found = None
    for entry in entries:
        if entry.mount_point == target:
            found = entry
    return found


def read_mountinfo() -> list[MountEntry]:
    return parse_mountinfo(MOUNTINFO.read_text(encoding="utf-8", errors="surrogateescape"))
