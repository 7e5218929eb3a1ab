"""The harnesses by name. Loading one imports the product, so the fuzz runner wraps
:func:`load` in atheris's import instrumentation; this module itself imports nothing of it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fuzz.harness import Harness

_IMAGE = ("filerestore.blockio", "filerestore.image", "filerestore.source")
_FS = ("filerestore.blockio", "filerestore.fs")

#: name -> (module, attribute, what the worker imports under atheris's instrumentation:
#: modules, or packages with every module in them; the product imports some of them only
#: when first used, which would be too late to instrument them)
REGISTRY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "qcow2": ("fuzz.targets.qcow2", "HARNESS", _IMAGE),
    "volume": ("fuzz.targets.volume", "VOLUME", ("filerestore.volume", *_FS)),
    "lvm_text": ("fuzz.targets.volume", "LVM_TEXT", ("filerestore.volume",)),
    "ext": ("fuzz.targets.filesystems", "EXT", _FS),
    "xfs": ("fuzz.targets.filesystems", "XFS", _FS),
    "ntfs": ("fuzz.targets.filesystems", "NTFS", _FS),
    "fat": ("fuzz.targets.filesystems", "FAT", _FS),
    "exfat": ("fuzz.targets.filesystems", "EXFAT", _FS),
    # dissect.btrfs is pure Python: instrumenting it lets coverage guide the fuzzer into it
    "btrfs": ("fuzz.targets.filesystems", "BTRFS", (*_FS, "dissect.btrfs")),
    "guest_paths": (
        "fuzz.targets.guest_paths",
        "HARNESS",
        ("filerestore.fs.base", "filerestore.restore.names", "filerestore.restore.extract"),
    ),
    "http": (
        "fuzz.targets.http",
        "HARNESS",
        ("filerestore.api.paths", "filerestore.api.downloads"),
    ),
}


def load(name: str) -> Harness:
    module, attr, _ = REGISTRY[name]
    harness: Harness = getattr(importlib.import_module(module), attr)
    return harness
