"""Restore sessions: how many, how long they live, what one may serve, their FUSE views."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from filerestore.image import DEFAULT_MAX_CHAIN_DEPTH
from filerestore.settings.group import SettingsGroup


class SessionSettings(SettingsGroup):
    max_sessions: PositiveInt = 8
    """Most restore sessions (mounts) open at once, over all workers. A running index pass
    holds one of them (a session owned by "index")."""
    max_sessions_per_owner: PositiveInt = 8
    """Live sessions one token (one owner) may hold; one more is refused with 429 (session_quota)
    and Retry-After. Admins are not limited by it. Index passes together count as one owner."""
    mount_wait_timeout: Annotated[float, Field(ge=0, le=300)] = 0.0
    """Seconds a mount waits for a slot when the host holds max_sessions, in a first-come
    first-served queue (per worker process); then, or at once with 0, it is refused with 429
    (session_limit) and Retry-After."""
    idle_timeout: PositiveFloat = 3600.0
    """Seconds after the last access at which a session expires."""
    cleanup_interval: PositiveFloat = 900.0
    """Seconds between two runs of the background cleanup worker."""
    stuck_timeout: PositiveFloat = 600.0
    """Seconds a session may stay in 'mounting' or 'unmounting' before cleanup removes it by force.
    """
    max_chain_depth: PositiveInt = DEFAULT_MAX_CHAIN_DEPTH
    """Deepest backing chain (images) a backup may have."""
    image_metadata_budget: Annotated[int, Field(ge=1 << 20)] = 64 << 20
    """Bytes of image tables (QCOW2 L1 pieces, L2 tables, decompressed clusters) one opened backup
    keeps in memory, over its whole backing chain. A chain that cannot be read within it is
    refused (422, code metadata_budget)."""
    worker_memory_limit: NonNegativeInt = 4 << 30
    """Address-space limit (bytes, RLIMIT_AS) of each API worker process; a worker that exceeds it
    dies and is replaced. 0: no limit."""
    max_downloads_per_session: PositiveInt = 4
    """Most downloads one session serves at once."""
    download_hold_timeout: PositiveFloat = 86400.0
    """Seconds after which cleanup drops a download hold whose process runs on another host (its
    liveness cannot be checked from here), so a dead host cannot keep a session alive for ever."""
    max_download_bytes: PositiveInt = 1 << 40
    """Bytes one download may carry (a file, or the range of it asked for), and bytes of file
    contents one archive may hold (the sizes its files list): more is refused before the first
    byte with 413. Default 1 TiB."""
    max_archive_entries: PositiveInt = 250_000
    """Entries one archive may hold; an archive's tree is counted before its first byte and one
    over the limit is refused with 413. A ZIP keeps about 0.75 KiB a member until its end:
    250,000 keeps a worker near 200 MB."""
    session_fuse: bool = False
    """Give every session a read-only FUSE view at mount_path (below session_fuse_root), served by
    a child process per session; unmounted when the session ends."""
    session_fuse_root: Path | None = None
    """Directory the sessions' FUSE views are mounted below (default: state_dir/mounts)."""
    session_fuse_allow_other: bool = False
    """Let other host users than the service's see the FUSE views (FUSE allow_other); the guest's
    modes and owners are then enforced by the kernel (default_permissions)."""
