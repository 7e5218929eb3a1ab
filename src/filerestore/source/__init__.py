"""Where an image's bytes come from: the files of a repository, opened only inside it.

A store opens a file by its name in the repository (a catalog path, a backing name, later an
extent name) and returns a reader of it with a canonical name and an identity; the contract
is :mod:`filerestore.source.base`. The image layer never opens a host path itself.

- ``local``: a directory on the host (local disk, or an NFS/CIFS share mounted there);
- ``s3``: keys under a prefix of an S3-compatible bucket (``s3names`` holds its naming
  rules, ``s3client`` the requests), read in blocks through a per-process ``blockpool``
  over the host's shared ``blockcache``.

The S3 names are imported on first use (PEP 562 ``__getattr__``): the object store client
costs start-up time that a local backup never needs (issue 14).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from filerestore.source.base import FileStat, SourceFile, Store
from filerestore.source.local import (
    FileIdentity,
    FileSignature,
    LocalStore,
    StoreFile,
    StoreStat,
)

if TYPE_CHECKING:
    from filerestore.source.blockcache import BlockCache
    from filerestore.source.s3 import BlockOptions, ObjectIdentity, ObjectStat, S3File, S3Store
    from filerestore.source.s3client import ObjectMeta, S3Options

#: names imported on first use, and their modules
_LAZY = {
    "BlockCache": "filerestore.source.blockcache",
    "BlockOptions": "filerestore.source.s3",
    "ObjectIdentity": "filerestore.source.s3",
    "ObjectStat": "filerestore.source.s3",
    "S3File": "filerestore.source.s3",
    "S3Store": "filerestore.source.s3",
    "ObjectMeta": "filerestore.source.s3client",
    "S3Options": "filerestore.source.s3client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BlockCache",
    "BlockOptions",
    "FileIdentity",
    "FileSignature",
    "FileStat",
    "LocalStore",
    "ObjectIdentity",
    "ObjectMeta",
    "ObjectStat",
    "S3File",
    "S3Options",
    "S3Store",
    "SourceFile",
    "Store",
    "StoreFile",
    "StoreStat",
]
