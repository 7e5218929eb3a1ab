"""The restore core: opened backup stacks, browsing and extraction, shared by every adapter."""

from filerestore.restore.stack import (
    ImageDescription,
    Stack,
    VolumeDescription,
    describe_image,
    open_stack,
)

__all__ = ["ImageDescription", "Stack", "VolumeDescription", "describe_image", "open_stack"]
