"""Build-once cache for test images: one file per recipe, keyed by the recipe and the builder.

The key hashes the recipe (any JSON-able value), the source of the module that defines the
build function, and the shared modules (this one and tree.py), so changing a builder
rebuilds what it built and nothing else. A build that uses another cached artefact should
put that artefact's path (which holds its key) in its recipe. Builds write to a temporary name and
rename, under a file lock, so parallel test processes never see a half-built image.
"""

from __future__ import annotations

import ast
import fcntl
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "images"
CACHE_DIR = Path(os.environ.get("FILERESTORE_TEST_CACHE", _DEFAULT_CACHE))


_SHARED = ("cache.py", "tree.py")


@functools.cache
def _fingerprint(module_file: str | None) -> str:
    h = hashlib.sha256()
    here = Path(__file__).parent
    for path in [here / name for name in _SHARED] + ([Path(module_file)] if module_file else []):
        h.update(path.name.encode())
        # the syntax tree, not the bytes: reformatting or commenting a builder rebuilds nothing
        h.update(ast.dump(ast.parse(path.read_bytes())).encode())
    return h.hexdigest()


def recipe_key(recipe: Any, build: Callable[[Path], None] | None = None) -> str:
    module = sys.modules.get(build.__module__) if build is not None else None
    fingerprint = _fingerprint(getattr(module, "__file__", None))
    blob = json.dumps([recipe, fingerprint], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def cached(name: str, recipe: Any, build: Callable[[Path], None], suffix: str = "img") -> Path:
    """Return the cached artefact for ``recipe``, calling ``build(tmp_path)`` if missing.

    ``build`` must create ``tmp_path`` (a file or a directory) and verify it; an exception
    leaves nothing in the cache.
    """
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out = CACHE_DIR / f"{name}-{recipe_key(recipe, build)}.{suffix}"
    if out.exists():
        return out
    with (CACHE_DIR / f"{out.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists():
            return out
        tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
        _remove(tmp)
        try:
            build(tmp)
            tmp.replace(out)
        finally:
            _remove(tmp)
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
