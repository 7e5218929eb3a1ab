"""Where an image's bytes come from: the files of a repository, opened only inside it.

A store opens a file by its name in the repository (a catalog path, a backing name, later an
extent name) and returns a reader of it with a canonical name and an identity; the contract
is :mod:`filerestore.source.base`. The image layer never opens a host path itself.

- ``local``: a directory on the host (local disk, or an NFS/CIFS share mounted there);
- ``s3``: keys under a prefix of an S3-compatible bucket (``s3names`` holds its naming
  rules, ``s3client`` the requests), read in blocks through a per-process ``blockpool``
  over the host's shared ``blockcache``.
"""

from filerestore.source.base import FileStat, SourceFile, Store
from filerestore.source.blockcache import BlockCache
from filerestore.source.local import (
    FileIdentity,
    FileSignature,
    LocalStore,
    StoreFile,
    StoreStat,
)
from filerestore.source.s3 import BlockOptions, ObjectIdentity, ObjectStat, S3File, S3Store
from filerestore.source.s3client import ObjectMeta, S3Options

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
