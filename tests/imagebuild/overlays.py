"""A qcow2 overlay made by ``qemu-img create`` over a backing file named as given, for tests
that build a chain in place (nothing here is cached)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def qcow2_overlay(image: Path, backing: str, backing_format: str, *options: str) -> None:
    """``qemu-img create`` of a qcow2 ``image`` over ``backing``, a name stored as given
    (relative names resolve from the overlay's directory)."""
    backed = ["-b", backing, "-F", backing_format]
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", *options, *backed, str(image)]
    subprocess.run(argv, capture_output=True, check=True)
