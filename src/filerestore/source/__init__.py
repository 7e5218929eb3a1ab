"""Where an image's bytes come from: the files of a repository, opened only inside it.

A store opens a file by its name in the repository (a catalog path, a backing name, later an
extent name) and returns a blockio reader of it with a canonical name and an identity. The
image layer never opens a host path itself. ``local`` is a directory on the host (local
disk, or an NFS/CIFS share mounted there).
"""

from filerestore.source.local import (
    FileIdentity,
    FileSignature,
    LocalStore,
    StoreFile,
    StoreStat,
)

__all__ = ["FileIdentity", "FileSignature", "LocalStore", "StoreFile", "StoreStat"]
