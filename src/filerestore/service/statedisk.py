"""Free space on the state directory's filesystem, checked before a new session is made.

A session costs rows (its own, its audit events, its downloads' events): when the disk that
holds them fills, they cannot be written, and a download whose audit row cannot be written
is refused. So new sessions stop first, while there is still room for the ones that exist
to finish: below ``min_free_state_bytes`` a mount is refused with StateDiskFullError (507).
"""

from __future__ import annotations

import os
from pathlib import Path

from filerestore.errors import StateDiskFullError

MiB = 1 << 20


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path`` (the
    nearest existing directory: with PostgreSQL the state directory may not exist)."""
    here = path.expanduser().absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    st = os.statvfs(here)
    return st.f_bavail * st.f_frsize


def require_free_space(state_dir: Path, minimum: int) -> None:
    """StateDiskFullError when the state directory's filesystem has less than ``minimum``
    bytes free (``minimum`` 0: no check)."""
    if minimum <= 0:
        return
    free = free_bytes(state_dir)
    if free < minimum:
        raise StateDiskFullError(
            f"the state directory's disk has {free / MiB:.1f} MiB free, less than the "
            f"{minimum / MiB:.1f} MiB kept for sessions and their audit trail: new sessions "
            "are refused until space is freed"
        )
