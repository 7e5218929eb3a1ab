"""Settings: ``FILERESTORE_*`` environment variables over an optional TOML file over defaults.

The file is the one named by ``FILERESTORE_CONFIG`` (TOML, read with the stdlib's
``tomllib``); without it only the environment and the defaults apply. Keys in the file are
the field names of :class:`Settings`, e.g.::

    max_sessions = 16
    idle_timeout = 1800

    [[repositories]]
    name = "nightly"
    path = "/srv/backups/nightly"
    kind = "nfs"

    [[repositories]]
    name = "offsite"
    path = "s3://backups/nightly"
    kind = "s3"
    endpoint = "https://s3.example.net"

    [s3_credentials.offsite]            # never stored in the database
    env_prefix = "OFFSITE_"             # OFFSITE_ACCESS_KEY_ID, OFFSITE_SECRET_ACCESS_KEY

The settings are grouped by concern, a module each: the state directory and database
(:mod:`.state`), sessions (:mod:`.sessions`), the audit trail and log (:mod:`.audit`),
restore jobs and their targets (:mod:`.restore_jobs`), the file index (:mod:`.index`) and
repositories (:mod:`.repositories`). A field's description is the docstring below it; a
test checks that every field has one, so the documentation stays complete.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from filerestore.errors import UsageError
from filerestore.settings.audit import AuditSettings
from filerestore.settings.index import IndexSettings
from filerestore.settings.repositories import (
    RepositoryConfig,
    RepositoryKind,
    RepositorySettings,
    S3Credentials,
)
from filerestore.settings.restore_jobs import RestoreJobSettings, RestoreTargetConfig, TargetKind
from filerestore.settings.sessions import SessionSettings
from filerestore.settings.state import StateSettings

__all__ = [
    "CONFIG_ENV",
    "RepositoryConfig",
    "RepositoryKind",
    "RestoreTargetConfig",
    "S3Credentials",
    "Settings",
    "TargetKind",
    "load_settings",
]

CONFIG_ENV = "FILERESTORE_CONFIG"


class Settings(
    RepositorySettings,
    IndexSettings,
    RestoreJobSettings,
    AuditSettings,
    SessionSettings,
    StateSettings,
    BaseSettings,
):
    """All of filerestore's settings. Environment variables are ``FILERESTORE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="FILERESTORE_", extra="forbid")

    @property
    def effective_block_cache_dir(self) -> Path:
        return (self.block_cache_dir or self.state_dir / "blocks").expanduser()

    @property
    def fuse_root(self) -> Path:
        return (self.session_fuse_root or self.state_dir / "mounts").expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            path = Path(config_file).expanduser()
            if not path.is_file():
                raise UsageError(f"{CONFIG_ENV} names a file that does not exist: {path}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and the config file; ``overrides`` win over both."""
    return Settings(**overrides)  # type: ignore[arg-type]
