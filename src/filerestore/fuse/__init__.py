"""A read-only FUSE view of one opened backup filesystem: an adapter like api/ and cli/.

It presents what the reading core (:mod:`filerestore.restore`, :mod:`filerestore.fs`) has
already parsed; the host kernel sees only FUSE requests, never the guest filesystem.

- ``mount.py``: mount, serve until a signal or an unmount, release the mount point;
- ``operations.py``: the request handlers (pyfuse3, libfuse 3's low-level API);
- ``inodes.py``: inode numbers (the guest's own) and the path each stands for;
- ``attributes.py``: an Entry as ``struct stat`` fields;
- ``listing.py``: a directory streamed to readdir requests by position;
- ``stacks.py``: one shared stack, or one per worker thread;
- ``errno_table.py``: filerestore errors as errno values.
"""

from filerestore.fuse.mount import check_fuse_available, check_mountpoint, serve
from filerestore.fuse.stacks import SharedStack, StackPerThread

__all__ = ["SharedStack", "StackPerThread", "check_fuse_available", "check_mountpoint", "serve"]
