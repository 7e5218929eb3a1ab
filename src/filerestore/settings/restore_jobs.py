"""Restore jobs and the targets they write to (local directories, SFTP hosts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from filerestore.settings.group import SettingsGroup

TargetKind = Literal["local", "sftp"]


class RestoreTargetConfig(SettingsGroup):
    """A place restore jobs may write to, declared by an admin (the only way to name one)."""

    name: str = Field(min_length=1, max_length=200)
    """Unique name of the target."""
    kind: TargetKind = "local"
    """local: a directory on this host; sftp: a directory on an SSH host."""
    path: Path
    """local: the target root, a directory on this host (jobs write only below it); sftp: the
    directory on the remote host jobs write below."""
    host: str | None = None
    """sftp: the SSH server's host name."""
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    """sftp: the SSH server's port."""
    username: str | None = None
    """sftp: the account to log in as."""
    client_keys: list[Path] | None = None
    """sftp: private key files to log in with (default: ssh_client_keys)."""
    known_hosts: Path | None = None
    """sftp: the known_hosts file the server's host key must be listed in (default:
    ssh_known_hosts). Host keys are always checked."""

    @model_validator(mode="after")
    def _sftp_needs_a_host(self) -> RestoreTargetConfig:
        if self.kind == "sftp" and (not self.host or not self.username):
            raise ValueError(f"restore target {self.name!r}: sftp needs host and username")
        return self


class RestoreJobSettings(SettingsGroup):
    restore_targets: list[RestoreTargetConfig] = Field(default_factory=list)
    """Where restore jobs may write: local target roots and SFTP hosts, by name."""
    ssh_known_hosts: Path | None = None
    """known_hosts file for SFTP targets that name none (host keys are always checked)."""
    ssh_client_keys: list[Path] = Field(default_factory=list)
    """Private key files SFTP targets log in with when they name none."""
    ssh_connect_timeout: PositiveFloat = 20.0
    """Seconds to connect and log in to an SFTP target."""
    restore_job_runner: bool = True
    """Run restore jobs in this service's worker processes (a runner thread each)."""
    restore_job_poll_interval: PositiveFloat = 2.0
    """Seconds between two looks of an idle runner for jobs."""
    restore_job_max_entries: PositiveInt = 1_000_000
    """Most entries (files, directories, links) one restore job may hold."""
    restore_job_stale_timeout: PositiveFloat = 120.0
    """Seconds without progress after which a running job whose worker is on another host (its
    liveness cannot be checked from here) is taken over by another runner."""
