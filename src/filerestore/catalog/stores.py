"""The stores of the catalog's repositories, for one process: how a repository row is read.

A local, NFS or CIFS repository is a :class:`~filerestore.source.LocalStore` on its root,
opened per use (a directory descriptor: nothing worth keeping, and a share remounted since
must be walked afresh). An S3 repository is one long-lived
:class:`~filerestore.source.S3Store` per process, made on first use and kept: every session
of the repository in this worker shares its block pool, its fetch threads and its client's
connections, and the host's disk block cache under all of them. Its options come from the
repository row (endpoint, bucket, prefix, region, path style, TLS verification) and from
this host's settings (credentials, timeouts, the block cache): credentials are never in the
database.

Workers are started by spawning, so each builds its own; a forked child that inherits a
``Stores`` drops the parent's S3 stores (their threads did not survive the fork) and makes
its own.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from filerestore.errors import FileRestoreError, InvalidRepositoryError
from filerestore.settings import Settings, load_settings
from filerestore.source import BlockOptions, LocalStore, S3Options, S3Store, Store
from filerestore.source.s3names import parse_s3_url

if TYPE_CHECKING:
    from filerestore.catalog.repositories import RepositoryInfo

S3_KIND = "s3"


def s3_options(repo: RepositoryInfo, settings: Settings) -> tuple[S3Options, str]:
    """The client options and the key prefix of the S3 repository ``repo`` on this host."""
    bucket, prefix = parse_s3_url(repo.root_path)
    creds = settings.s3_credentials.get(repo.name)
    key_id, secret, token = creds.resolved() if creds is not None else (None, None, None)
    options = S3Options(
        bucket=bucket,
        endpoint=repo.endpoint,
        region=repo.region,
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=token,
        verify_tls=repo.verify_tls,
        path_style=repo.path_style,
        connect_timeout=settings.s3_connect_timeout,
        request_timeout=settings.s3_request_timeout,
        retries=settings.s3_retries,
        pool_size=max(32, 4 * settings.block_prefetch),
    )
    return options, prefix


def block_options(settings: Settings) -> BlockOptions:
    cache = settings.block_cache_size > 0
    return BlockOptions(
        block_size=settings.block_size,
        prefetch=settings.block_prefetch,
        memory_bytes=settings.block_memory,
        cache_dir=settings.effective_block_cache_dir if cache else None,
        cache_capacity=settings.block_cache_size,
        revalidate_after=settings.s3_revalidate_after,
    )


class Stores:
    """The stores of one process; thread-safe. ``settings`` None: loaded on first S3 use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._s3: dict[tuple[object, ...], S3Store] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @contextmanager
    def opened(self, repo: RepositoryInfo) -> Iterator[Store]:
        """The store of ``repo`` for the block's duration. What was opened through it stays
        readable after: a local file owns its descriptor, and an S3 store lives on."""
        if repo.kind == S3_KIND:
            yield self.s3(repo)
            return
        with LocalStore(repo.root_path) as store:
            yield store

    def s3(self, repo: RepositoryInfo) -> S3Store:
        """This process's store of the S3 repository ``repo`` (made on first use)."""
        if repo.kind != S3_KIND:
            raise InvalidRepositoryError(f"repository {repo.name!r} is not an S3 repository")
        key = (
            repo.id,
            repo.name,
            repo.root_path,
            repo.endpoint,
            repo.region,
            repo.path_style,
            repo.verify_tls,
        )
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's threads are gone
                self._s3.clear()
                self._pid = os.getpid()
            store = self._s3.get(key)
            if store is None:
                options, prefix = s3_options(repo, self.settings)
                store = self._s3[key] = S3Store(options, prefix, block_options(self.settings))
        return store

    def check_new(self, repo: RepositoryInfo) -> None:
        """Ask the bucket of a repository not yet in the catalog to answer (one request),
        through a store made for the purpose and closed after."""
        options, prefix = s3_options(repo, self.settings)
        blocks = BlockOptions(prefetch=1, memory_bytes=0)
        with S3Store(options, prefix, blocks) as store:
            store.check()

    def held(self) -> list[S3Store]:
        """The S3 stores this process holds (for its figures: memory, requests)."""
        with self._lock:
            return list(self._s3.values())

    def close(self) -> None:
        with self._lock:
            stores, self._s3 = list(self._s3.values()), {}
            mine = self._pid == os.getpid()
        if mine:
            for store in stores:
                with contextlib.suppress(FileRestoreError):  # must not hide why we close
                    store.close()


_default: Stores | None = None
_default_lock = threading.Lock()


def default_stores() -> Stores:
    """The process's stores from its own settings: for callers that were given none (a
    library user, tests of local repositories)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Stores()
        return _default
