"""Resource figures for a status endpoint: sessions against the limit, readers, memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from filerestore.service.sessions import SessionManager


@dataclass(frozen=True, slots=True)
class ResourceFigures:
    sessions_used: int
    sessions_limit: int
    downloads_in_progress: int
    #: reader stacks opened by this process (idle in the pool or in use)
    readers_open: int
    #: resident set size of this process, in bytes
    memory_rss_bytes: int
    #: the process these figures are of (each API worker has its own readers and memory)
    worker_pid: int


def process_rss() -> int:
    # /proc/self/statm field 2: resident pages
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE")


def resource_figures(manager: SessionManager) -> ResourceFigures:
    return ResourceFigures(
        sessions_used=manager.live_count(),
        sessions_limit=manager.settings.max_sessions,
        downloads_in_progress=manager.downloads_in_progress(),
        readers_open=manager.readers.open_count(),
        memory_rss_bytes=process_rss(),
        worker_pid=os.getpid(),
    )
