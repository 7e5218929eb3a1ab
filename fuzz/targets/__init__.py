"""The harnesses by name. Loading one imports the product, so the fuzz runner wraps
:func:`load` in atheris's import instrumentation; this module itself imports nothing of it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fuzz.harness import Harness

#: name -> (module, attribute, top-level packages atheris instruments)
REGISTRY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "qcow2": ("fuzz.targets.qcow2", "HARNESS", ("filerestore",)),
    "volume": ("fuzz.targets.volume", "VOLUME", ("filerestore",)),
    "lvm_text": ("fuzz.targets.volume", "LVM_TEXT", ("filerestore",)),
    "ext": ("fuzz.targets.filesystems", "EXT", ("filerestore",)),
    "xfs": ("fuzz.targets.filesystems", "XFS", ("filerestore",)),
    "ntfs": ("fuzz.targets.filesystems", "NTFS", ("filerestore",)),
    "fat": ("fuzz.targets.filesystems", "FAT", ("filerestore",)),
    "exfat": ("fuzz.targets.filesystems", "EXFAT", ("filerestore",)),
    # dissect.btrfs is pure Python: instrumenting it lets coverage guide the fuzzer into it
    "btrfs": ("fuzz.targets.filesystems", "BTRFS", ("filerestore", "dissect")),
    "guest_paths": ("fuzz.targets.guest_paths", "HARNESS", ("filerestore",)),
    "http": ("fuzz.targets.http", "HARNESS", ("filerestore",)),
}


def load(name: str) -> Harness:
    module, attr, _ = REGISTRY[name]
    harness: Harness = getattr(importlib.import_module(module), attr)
    return harness
