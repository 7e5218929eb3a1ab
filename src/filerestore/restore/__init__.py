"""The restore core: opened backup stacks, browsing and extraction, shared by every adapter.

The read-only overview of a backup (``describe_image``) is in
:mod:`filerestore.restore.describe`, which opening a backup does not import.
"""

from filerestore.restore.stack import Stack, open_stack

__all__ = ["Stack", "open_stack"]
