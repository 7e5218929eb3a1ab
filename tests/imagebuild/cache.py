"""Build-once cache for test images: one file per recipe, keyed by the recipe and the builder.

The key hashes the recipe (any JSON-able value) and the source of every module in this
package, so changing a builder rebuilds what it built. Builds write to a temporary name and
rename, under a file lock, so parallel test processes never see a half-built image.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_DIR = Path(
    os.environ.get("FILERESTORE_TEST_CACHE", Path(__file__).resolve().parents[2] / ".cache" / "images")
)


def _builder_fingerprint() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


_FINGERPRINT = _builder_fingerprint()


def recipe_key(recipe: Any) -> str:
    blob = json.dumps([recipe, _FINGERPRINT], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def cached(name: str, recipe: Any, build: Callable[[Path], None], suffix: str = "img") -> Path:
    """Return the cached artefact for ``recipe``, calling ``build(tmp_path)`` if missing.

    ``build`` must create ``tmp_path`` (a file or a directory) and verify it; an exception
    leaves nothing in the cache.
    """
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out = CACHE_DIR / f"{name}-{recipe_key(recipe)}.{suffix}"
    if out.exists():
        return out
    with open(CACHE_DIR / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists():
            return out
        tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
        _remove(tmp)
        try:
            build(tmp)
            os.replace(tmp, out)
        finally:
            _remove(tmp)
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
