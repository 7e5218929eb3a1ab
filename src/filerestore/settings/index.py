"""The file index: which files are hashed, and the runners that index backups."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from filerestore.settings.group import SettingsGroup


class IndexSettings(SettingsGroup):
    index_hash_max_size: NonNegativeInt = 0
    """Files of at most this many bytes get a content hash (BLAKE2b-128) when a backup is indexed;
    larger ones, and every file when 0, are hashed on demand (a diff asked to compare contents).
    Hashing reads each such file, which costs more than the rest of the index pass."""
    index_job_attempts: PositiveInt = 5
    """Attempts an index job gets before it is failed (retried with backoff)."""
    index_job_backoff: PositiveFloat = 30.0
    """Seconds before an index job's first retry; each later retry waits twice as long."""
    index_job_lease: PositiveFloat = 120.0
    """Seconds an index runner holds its job without a heartbeat (it beats after every batch); a
    job whose lease ran out is taken over and resumed by another runner."""
    index_on_register: bool = True
    """Queue an index job for every backup a scan or registration adds (a backup never indexed and
    never queued before); off: only `filerestore index queue` and the API's index route queue
    them."""
    index_runners: Annotated[int, Field(ge=0, le=16)] = 1
    """Index runner threads each service process (`filerestore serve` worker) starts; 0: none (run
    `filerestore index run --follow` elsewhere). On SQLite keep the total at one: runners there
    take turns at the database's one write lock."""
    index_poll_interval: PositiveFloat = 2.0
    """Seconds an idle index runner waits before it looks for a job again."""
