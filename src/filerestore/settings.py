"""Settings: ``FILERESTORE_*`` environment variables over an optional TOML file over defaults.

The file is the one named by ``FILERESTORE_CONFIG`` (TOML, read with the stdlib's
``tomllib``); without it only the environment and the defaults apply. Keys in the file are
the field names below, e.g.::

    max_sessions = 16
    idle_timeout = 1800

    [[repositories]]
    name = "nightly"
    path = "/srv/backups/nightly"
    kind = "nfs"

Every field carries a description; a test checks it, so the documentation stays complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from filerestore.errors import UsageError
from filerestore.image import DEFAULT_MAX_CHAIN_DEPTH

CONFIG_ENV = "FILERESTORE_CONFIG"

RepositoryKind = Literal["local", "nfs", "cifs"]


class RepositoryConfig(BaseModel):
    """A backup repository declared in the settings file (synced into the catalog)."""

    name: str = Field(description="Unique name of the repository.")
    path: Path = Field(description="Root directory that holds the backup images.")
    kind: RepositoryKind = Field(
        default="local",
        description="local: a plain directory; nfs or cifs: a share the host has mounted there.",
    )


def _default_state_dir() -> Path:
    return Path("~/.local/state/filerestore").expanduser()


class Settings(BaseSettings):
    """All of filerestore's settings. Environment variables are ``FILERESTORE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="FILERESTORE_", extra="forbid")

    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Directory holding filerestore's state: the SQLite database filerestore.db.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the database (e.g. postgresql+psycopg://user@host/db). "
            "Unset: a SQLite file in state_dir."
        ),
    )
    db_busy_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds to wait for a database lock held by another writer before failing.",
    )
    max_sessions: int = Field(
        default=8,
        ge=1,
        description="Most restore sessions (mounts) open at once, over all workers.",
    )
    idle_timeout: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds after the last access at which a session expires.",
    )
    cleanup_interval: float = Field(
        default=900.0,
        gt=0,
        description="Seconds between two runs of the background cleanup worker.",
    )
    stuck_timeout: float = Field(
        default=600.0,
        gt=0,
        description=(
            "Seconds a session may stay in 'mounting' or 'unmounting' before cleanup "
            "removes it by force."
        ),
    )
    max_chain_depth: int = Field(
        default=DEFAULT_MAX_CHAIN_DEPTH,
        ge=1,
        description="Deepest backing chain (images) a backup may have.",
    )
    image_metadata_budget: int = Field(
        default=64 << 20,
        ge=1 << 20,
        description=(
            "Bytes of image tables (QCOW2 L1 pieces, L2 tables, decompressed clusters) one "
            "opened backup keeps in memory, over its whole backing chain. A chain that cannot "
            "be read within it is refused (422, code metadata_budget)."
        ),
    )
    max_downloads_per_session: int = Field(
        default=4, ge=1, description="Most downloads one session serves at once."
    )
    worker_memory_limit: int = Field(
        default=4 << 30,
        ge=0,
        description=(
            "Address-space limit (bytes, RLIMIT_AS) of each API worker process; a worker "
            "that exceeds it dies and is replaced. 0: no limit."
        ),
    )
    download_hold_timeout: float = Field(
        default=86400.0,
        gt=0,
        description=(
            "Seconds after which cleanup drops a download hold whose process runs on another "
            "host (its liveness cannot be checked from here), so a dead host cannot keep a "
            "session alive for ever."
        ),
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description=(
            "Format of the service's log lines on stderr (``serve --log-format`` overrides): "
            "json, one JSON object a line; text, for people; auto, text when stderr is a "
            "terminal, else JSON."
        ),
    )
    repositories: list[RepositoryConfig] = Field(
        default_factory=list,
        description="Repositories declared in the settings file; added to the catalog at start.",
    )

    @property
    def sqlite_path(self) -> Path:
        return self.state_dir.expanduser() / "filerestore.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

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
