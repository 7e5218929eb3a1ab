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

    [[repositories]]
    name = "offsite"
    path = "s3://backups/nightly"
    kind = "s3"
    endpoint = "https://s3.example.net"

    [s3_credentials.offsite]            # never stored in the database
    env_prefix = "OFFSITE_"             # OFFSITE_ACCESS_KEY_ID, OFFSITE_SECRET_ACCESS_KEY

Every field carries a description; a test checks it, so the documentation stays complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from filerestore.errors import UsageError
from filerestore.image import DEFAULT_MAX_CHAIN_DEPTH

CONFIG_ENV = "FILERESTORE_CONFIG"

RepositoryKind = Literal["local", "nfs", "cifs", "s3"]
TargetKind = Literal["local", "sftp"]
MiB = 1 << 20


class RepositoryConfig(BaseModel):
    """A backup repository declared in the settings file (synced into the catalog)."""

    name: str = Field(description="Unique name of the repository.")
    path: str = Field(
        description="Root directory that holds the backup images; for kind s3, the "
        "repository's URL s3://BUCKET/PREFIX."
    )
    kind: RepositoryKind = Field(
        default="local",
        description="local: a plain directory; nfs or cifs: a share the host has mounted "
        "there; s3: keys under a prefix of an S3-compatible bucket.",
    )
    endpoint: str | None = Field(
        default=None,
        description="kind s3: the object store's URL (https://host:port); unset: AWS S3.",
    )
    region: str | None = Field(
        default=None, description="kind s3: the bucket's region (unset: the AWS_REGION default)."
    )
    path_style: bool = Field(
        default=True,
        description="kind s3: path-style requests (endpoint/bucket/key), which most "
        "S3-compatible servers expect; false: virtual-hosted style (bucket.endpoint/key).",
    )
    verify_tls: bool = Field(
        default=True,
        description="kind s3: verify the endpoint's TLS certificate. Turn off only for a "
        "test server with a self-signed certificate.",
    )

    @field_validator("path", mode="before")
    @classmethod
    def _path_text(cls, value: object) -> object:
        # a directory may be given as a Path; kept as text, an s3:// URL keeps its "//"
        return os.fspath(value) if isinstance(value, os.PathLike) else value


class S3Credentials(BaseModel):
    """Credentials of one S3 repository, by repository name: given here, or read from
    environment variables named by ``env_prefix``. A repository without an entry uses the
    standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or
    the host's web identity or container credentials."""

    access_key_id: str | None = Field(default=None, description="The access key id.")
    secret_access_key: SecretStr | None = Field(
        default=None, description="The secret access key (kept out of logs and reprs)."
    )
    session_token: SecretStr | None = Field(
        default=None, description="A session token, for temporary credentials."
    )
    env_prefix: str | None = Field(
        default=None,
        description="Read the credentials from the environment variables PREFIX + "
        "ACCESS_KEY_ID, SECRET_ACCESS_KEY and SESSION_TOKEN (e.g. a Kubernetes Secret).",
    )

    def resolved(self) -> tuple[str | None, str | None, str | None]:
        """(access key id, secret access key, session token), the environment's when
        ``env_prefix`` is set."""
        if self.env_prefix is not None:
            env = os.environ
            p = self.env_prefix
            return (
                env.get(f"{p}ACCESS_KEY_ID"),
                env.get(f"{p}SECRET_ACCESS_KEY"),
                env.get(f"{p}SESSION_TOKEN"),
            )
        secret, token = self.secret_access_key, self.session_token
        return (
            self.access_key_id,
            secret.get_secret_value() if secret is not None else None,
            token.get_secret_value() if token is not None else None,
        )


class RestoreTargetConfig(BaseModel):
    """A place restore jobs may write to, declared by an admin (the only way to name one)."""

    name: str = Field(min_length=1, max_length=200, description="Unique name of the target.")
    kind: TargetKind = Field(
        default="local",
        description="local: a directory on this host; sftp: a directory on an SSH host.",
    )
    path: Path = Field(
        description=(
            "local: the target root, a directory on this host (jobs write only below it); "
            "sftp: the directory on the remote host jobs write below."
        )
    )
    host: str | None = Field(default=None, description="sftp: the SSH server's host name.")
    port: int = Field(default=22, ge=1, le=65535, description="sftp: the SSH server's port.")
    username: str | None = Field(default=None, description="sftp: the account to log in as.")
    client_keys: list[Path] | None = Field(
        default=None,
        description="sftp: private key files to log in with (default: ssh_client_keys).",
    )
    known_hosts: Path | None = Field(
        default=None,
        description=(
            "sftp: the known_hosts file the server's host key must be listed in "
            "(default: ssh_known_hosts). Host keys are always checked."
        ),
    )

    @model_validator(mode="after")
    def _sftp_needs_a_host(self) -> RestoreTargetConfig:
        if self.kind == "sftp" and (not self.host or not self.username):
            raise ValueError(f"restore target {self.name!r}: sftp needs host and username")
        return self


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
    max_sessions_per_owner: int = Field(
        default=8,
        ge=1,
        description=(
            "Live sessions one token (one owner) may hold; one more is refused with 429 "
            "(session_quota) and Retry-After. Admins are not limited by it."
        ),
    )
    mount_wait_timeout: float = Field(
        default=0.0,
        ge=0,
        le=300,
        description=(
            "Seconds a mount waits for a slot when the host holds max_sessions, in a "
            "first-come first-served queue (per worker process); then, or at once with 0, "
            "it is refused with 429 (session_limit) and Retry-After."
        ),
    )
    max_download_bytes: int = Field(
        default=1 << 40,
        ge=1,
        description=(
            "Bytes one download may carry (a file, or the range of it asked for), and bytes "
            "of file contents one archive may hold (the sizes its files list): more is "
            "refused before the first byte with 413. Default 1 TiB."
        ),
    )
    max_archive_entries: int = Field(
        default=250_000,
        ge=1,
        description=(
            "Entries one archive may hold; an archive's tree is counted before its first byte "
            "and one over the limit is refused with 413. A ZIP keeps about 0.75 KiB a member "
            "until its end: 250,000 keeps a worker near 200 MB."
        ),
    )
    audit_text_limit: int = Field(
        default=1024,
        ge=64,
        le=1 << 20,
        description=(
            "Characters of a path or a detail one audit row keeps; a longer one is cut and "
            "says how much was left out, so no request can make a row large."
        ),
    )
    audit_retention_days: float = Field(
        default=90.0,
        gt=0,
        description=(
            "Days an audit row is kept; the cleanup worker deletes older rows, in batches."
        ),
    )
    audit_fail_open: bool = Field(
        default=False,
        description=(
            "Serve a download even when its audit row cannot be written (the event then only "
            "reaches the log). Default false: such a download is refused (fail closed)."
        ),
    )
    refusal_log_rate: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Log lines per second (per worker) for requests refused for want of a valid "
            "token; they are counted in metrics and never written to the database. Refusals "
            "beyond the rate are counted in the next line's 'suppressed'."
        ),
    )
    refusal_log_burst: int = Field(
        default=20,
        ge=1,
        description=(
            "Lines of refused unauthenticated requests logged at once before "
            "refusal_log_rate applies."
        ),
    )
    min_free_state_bytes: int = Field(
        default=256 << 20,
        ge=0,
        description=(
            "Free bytes the state directory's filesystem must keep: below it new sessions are "
            "refused (507, code state_disk_full) so the audit trail and sessions can still be "
            "written. 0: no check."
        ),
    )
    session_fuse: bool = Field(
        default=False,
        description=(
            "Give every session a read-only FUSE view at mount_path (below session_fuse_root), "
            "served by a child process per session; unmounted when the session ends."
        ),
    )
    session_fuse_root: Path | None = Field(
        default=None,
        description="Directory the sessions' FUSE views are mounted below "
        "(default: state_dir/mounts).",
    )
    session_fuse_allow_other: bool = Field(
        default=False,
        description=(
            "Let other host users than the service's see the FUSE views (FUSE allow_other); "
            "the guest's modes and owners are then enforced by the kernel (default_permissions)."
        ),
    )
    restore_targets: list[RestoreTargetConfig] = Field(
        default_factory=list,
        description="Where restore jobs may write: local target roots and SFTP hosts, by name.",
    )
    ssh_known_hosts: Path | None = Field(
        default=None,
        description="known_hosts file for SFTP targets that name none "
        "(host keys are always checked).",
    )
    ssh_client_keys: list[Path] = Field(
        default_factory=list,
        description="Private key files SFTP targets log in with when they name none.",
    )
    ssh_connect_timeout: float = Field(
        default=20.0, gt=0, description="Seconds to connect and log in to an SFTP target."
    )
    restore_job_runner: bool = Field(
        default=True,
        description="Run restore jobs in this service's worker processes (a runner thread each).",
    )
    restore_job_poll_interval: float = Field(
        default=2.0, gt=0, description="Seconds between two looks of an idle runner for jobs."
    )
    restore_job_max_entries: int = Field(
        default=1_000_000,
        ge=1,
        description="Most entries (files, directories, links) one restore job may hold.",
    )
    restore_job_stale_timeout: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Seconds without progress after which a running job whose worker is on another "
            "host (its liveness cannot be checked from here) is taken over by another runner."
        ),
    )
    index_hash_max_size: int = Field(
        default=0,
        ge=0,
        description=(
            "Files of at most this many bytes get a content hash (BLAKE2b-128) when a backup "
            "is indexed; larger ones, and every file when 0, are hashed on demand (a diff "
            "asked to compare contents). Hashing reads each such file, which costs more than "
            "the rest of the index pass."
        ),
    )
    index_job_attempts: int = Field(
        default=5,
        ge=1,
        description="Attempts an index job gets before it is failed (retried with backoff).",
    )
    index_job_backoff: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds before an index job's first retry; each later retry waits twice as long."
        ),
    )
    index_job_lease: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Seconds an index runner holds its job without a heartbeat (it beats after every "
            "batch); a job whose lease ran out is taken over and resumed by another runner."
        ),
    )
    index_on_register: bool = Field(
        default=True,
        description=(
            "Queue an index job for every backup a scan or registration adds (a backup "
            "never indexed and never queued before); off: only `filerestore index queue` "
            "and the API's index route queue them."
        ),
    )
    index_runners: int = Field(
        default=1,
        ge=0,
        le=16,
        description=(
            "Index runner threads each service process (`filerestore serve` worker) starts; "
            "0: none (run `filerestore index run --follow` elsewhere). On SQLite keep the "
            "total at one: runners there take turns at the database's one write lock."
        ),
    )
    index_poll_interval: float = Field(
        default=2.0,
        gt=0,
        description="Seconds an idle index runner waits before it looks for a job again.",
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
    s3_credentials: dict[str, S3Credentials] = Field(
        default_factory=dict,
        description="Credentials of S3 repositories by repository name (see S3Credentials); "
        "the catalog never stores credentials.",
    )
    block_cache_dir: Path | None = Field(
        default=None,
        description="S3 repositories: the host's block cache directory, shared by its worker "
        "processes and kept across restarts; must be on a local filesystem. Unset: "
        "state_dir/blocks.",
    )
    block_cache_size: int = Field(
        default=10 << 30,
        ge=0,
        description="S3 repositories: bytes the block cache may hold on disk (least recently "
        "used blocks are evicted). 0: no disk cache, blocks are kept in memory only.",
    )
    block_size: int = Field(
        default=1 * MiB,
        ge=64 << 10,
        le=64 * MiB,
        description="S3 repositories: bytes fetched by one ranged GET and cached as one block.",
    )
    block_prefetch: int = Field(
        default=8,
        ge=1,
        le=64,
        description="S3 repositories: blocks fetched ahead, in parallel, of a reader streaming "
        "a file (and the fetch threads of each repository in each worker).",
    )
    block_memory: int = Field(
        default=32 * MiB,
        ge=0,
        description="S3 repositories: bytes of blocks each worker process keeps in memory per "
        "repository (plus at most block_prefetch blocks in flight).",
    )
    s3_revalidate_after: float = Field(
        default=15.0,
        ge=0,
        description="S3 repositories: seconds after the object store last confirmed an "
        "object's version (ETag) during which opening it again asks nothing. Safe because "
        "every block not yet cached is fetched with If-Match on that version. 0: ask on "
        "every open.",
    )
    s3_connect_timeout: float = Field(
        default=5.0, gt=0, description="S3 repositories: seconds to connect to the endpoint."
    )
    s3_request_timeout: float = Field(
        default=30.0,
        gt=0,
        description="S3 repositories: seconds one request may take, connect to last byte.",
    )
    s3_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="S3 repositories: retries of a failed request (exponential backoff); "
        "then the repository is reported unavailable (503, exit 6).",
    )

    @property
    def effective_block_cache_dir(self) -> Path:
        return (self.block_cache_dir or self.state_dir / "blocks").expanduser()

    @property
    def sqlite_path(self) -> Path:
        return self.state_dir.expanduser() / "filerestore.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

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
