"""Which process holds a row, and whether that process is still alive.

A row in a transition (``mounting``, ``unmounting``) or a download hold records the host,
pid and the pid's start time (``/proc/<pid>/stat`` field 22, clock ticks since boot). On
the same host a row whose process is gone, or whose pid now belongs to a process started
at another time (pid reuse), was left by a crash.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    start: int


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot; None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie is dead, only not yet reaped
        return None
    return int(fields[19])  # field 22 overall; fields[0] here is field 3


def this_process() -> ProcessIdentity:
    pid = os.getpid()
    start = process_start(pid)
    assert start is not None
    return ProcessIdentity(socket.gethostname(), pid, start)


def is_dead(host: str | None, pid: int | None, start: int | None) -> bool:
    """True only when the holder is known dead: on this host, and gone or its pid reused."""
    if host is None or pid is None or host != socket.gethostname():
        return False
    current = process_start(pid)
    return current is None or (start is not None and current != start)
