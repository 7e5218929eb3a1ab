"""The restore targets an admin configured, by name, and opening one for a job.

A target is only ever named: a request cannot give a host path or a host name. A local
target's destination must stay below its root (checked by name before a job is queued, and
again by the copy itself, which never follows a link in the destination); an SFTP target
connects with the target's keys and checks the host key against its known_hosts file.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from filerestore.errors import DestinationEscapeError, TargetNotFoundError
from filerestore.restore.targets import Target, destination_parts
from filerestore.restore.targets.local import LocalTarget
from filerestore.restore.targets.sftp import SftpTarget
from filerestore.restore.targets.sftp_connection import Endpoint
from filerestore.settings import RestoreTargetConfig, Settings


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """A target as a principal sees it: ``location`` (a host path or an SSH address) only
    for an admin."""

    name: str
    kind: str
    location: str | None


def _configs(settings: Settings) -> dict[str, RestoreTargetConfig]:
    return {t.name: t for t in settings.restore_targets}


def target_config(settings: Settings, name: str) -> RestoreTargetConfig:
    found = _configs(settings).get(name)
    if found is None:
        raise TargetNotFoundError(f"no restore target named {name!r}")
    return found


def list_targets(settings: Settings, admin: bool) -> list[TargetInfo]:
    return [
        TargetInfo(t.name, t.kind, _location(t) if admin else None)
        for t in settings.restore_targets
    ]


def _location(config: RestoreTargetConfig) -> str:
    if config.kind == "local":
        return str(config.path)
    return f"{config.username}@{config.host}:{config.port}:{config.path}"


def check_destination(settings: Settings, name: str, destination: str) -> None:
    """Refuse, by name, a destination that leaves its target: ``..``, an absolute path, and
    for a local target a symbolic link or a non-directory on the way down (what exists of
    it; the rest is created by the job)."""
    config = target_config(settings, name)
    parts = destination_parts(destination)
    if config.kind != "local":
        return
    try:
        fd = os.open(config.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return  # the job reports the unavailable root when it runs
    try:
        for i, part in enumerate(parts):
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    shown = b"/".join(parts[: i + 1]).decode("utf-8", "backslashreplace")
                    raise DestinationEscapeError(
                        f"refusing the destination: {shown!r} in target {name!r} is a "
                        "symbolic link or not a directory"
                    ) from exc
                raise
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def open_target(settings: Settings, name: str, destination: str) -> Target:
    """The target ``name``, opened on ``destination`` (created when missing)."""
    config = target_config(settings, name)
    parts = destination_parts(destination)
    if config.kind == "local":
        return LocalTarget(config.path, parts)
    assert config.host is not None and config.username is not None  # the settings check
    keys = config.client_keys if config.client_keys is not None else settings.ssh_client_keys
    endpoint = Endpoint(
        host=config.host,
        port=config.port,
        username=config.username,
        root=str(config.path),
        client_keys=tuple(keys),
        known_hosts=config.known_hosts or settings.ssh_known_hosts,
        connect_timeout=settings.ssh_connect_timeout,
    )
    return SftpTarget(endpoint, parts)
