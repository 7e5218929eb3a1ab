"""The demo repository (``filerestore serve --demo``'s, from the committed ``demo/`` trees),
built by scripts/build_demo.py (mke2fs, mkntfs + ntfs-3g, qemu-img) and cached, for the API
tests."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.imagebuild.cache import cached

ROOT = Path(__file__).resolve().parents[2]


def demo_repo() -> Path:
    def build(tmp: Path) -> None:
        sys.path.insert(0, str(ROOT / "scripts"))
        try:
            import build_demo  # type: ignore[import-not-found]
        finally:
            sys.path.pop(0)
        build_demo.main(tmp)

    return cached("api-demo-repo", {"demo": 1}, build, "d")
