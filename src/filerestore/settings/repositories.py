"""Backup repositories declared in the settings, S3 credentials, and how S3 repositories are
read (the block cache, timeouts, retries)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    SecretStr,
    field_validator,
)

from filerestore.settings.group import SettingsGroup

RepositoryKind = Literal["local", "nfs", "cifs", "s3"]
MiB = 1 << 20


class RepositoryConfig(SettingsGroup):
    """A backup repository declared in the settings file (synced into the catalog)."""

    name: str
    """Unique name of the repository."""
    path: str
    """Root directory that holds the backup images; for kind s3, the repository's URL
    s3://BUCKET/PREFIX."""
    kind: RepositoryKind = "local"
    """local: a plain directory; nfs or cifs: a share the host has mounted there; s3: keys under a
    prefix of an S3-compatible bucket."""
    endpoint: str | None = None
    """kind s3: the object store's URL (https://host:port); unset: AWS S3."""
    region: str | None = None
    """kind s3: the bucket's region (unset: the AWS_REGION default)."""
    path_style: bool = True
    """kind s3: path-style requests (endpoint/bucket/key), which most S3-compatible servers expect;
    false: virtual-hosted style (bucket.endpoint/key)."""
    verify_tls: bool = True
    """kind s3: verify the endpoint's TLS certificate. Turn off only for a test server with a
    self-signed certificate."""

    @field_validator("path", mode="before")
    @classmethod
    def _path_text(cls, value: object) -> object:
        # a directory may be given as a Path; kept as text, an s3:// URL keeps its "//"
        return os.fspath(value) if isinstance(value, os.PathLike) else value


class S3Credentials(SettingsGroup):
    """Credentials of one S3 repository, by repository name: given here, or read from
    environment variables named by ``env_prefix``. A repository without an entry uses the
    standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or
    the host's web identity or container credentials."""

    access_key_id: str | None = None
    """The access key id."""
    secret_access_key: SecretStr | None = None
    """The secret access key (kept out of logs and reprs)."""
    session_token: SecretStr | None = None
    """A session token, for temporary credentials."""
    env_prefix: str | None = None
    """Read the credentials from the environment variables PREFIX + ACCESS_KEY_ID,
    SECRET_ACCESS_KEY and SESSION_TOKEN (e.g. a Kubernetes Secret)."""

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


class RepositorySettings(SettingsGroup):
    repositories: list[RepositoryConfig] = Field(default_factory=list)
    """Repositories declared in the settings file; added to the catalog at start."""
    s3_credentials: dict[str, S3Credentials] = Field(default_factory=dict)
    """Credentials of S3 repositories by repository name (see S3Credentials); the catalog never
    stores credentials."""
    block_cache_dir: Path | None = None
    """S3 repositories: the host's block cache directory, shared by its worker processes and kept
    across restarts; must be on a local filesystem. Unset: state_dir/blocks."""
    block_cache_size: NonNegativeInt = 10 << 30
    """S3 repositories: bytes the block cache may hold on disk (least recently used blocks are
    evicted). 0: no disk cache, blocks are kept in memory only."""
    block_size: Annotated[int, Field(ge=64 << 10, le=64 * MiB)] = 1 * MiB
    """S3 repositories: bytes fetched by one ranged GET and cached as one block."""
    block_prefetch: Annotated[int, Field(ge=1, le=64)] = 8
    """S3 repositories: blocks fetched ahead, in parallel, of a reader streaming a file (and the
    fetch threads of each repository in each worker)."""
    block_memory: NonNegativeInt = 32 * MiB
    """S3 repositories: bytes of blocks each worker process keeps in memory per repository (plus at
    most block_prefetch blocks in flight)."""
    s3_revalidate_after: NonNegativeFloat = 15.0
    """S3 repositories: seconds after the object store last confirmed an object's version (ETag)
    during which opening it again asks nothing. Safe because every block not yet cached is
    fetched with If-Match on that version. 0: ask on every open."""
    s3_connect_timeout: PositiveFloat = 5.0
    """S3 repositories: seconds to connect to the endpoint."""
    s3_request_timeout: PositiveFloat = 30.0
    """S3 repositories: seconds one request may take, connect to last byte."""
    s3_retries: Annotated[int, Field(ge=0, le=10)] = 3
    """S3 repositories: retries of a failed request (exponential backoff); then the repository is
    reported unavailable (503, exit 6)."""
