"""Named paths inside a built directory (an image build's output, a server's run directory),
declared once as class attributes instead of one property each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class InDir:
    """A read-only attribute: the path ``parts`` below the directory the owning object holds
    in its attribute ``attr`` (``root`` unless named)."""

    def __init__(self, *parts: str, attr: str = "root") -> None:
        self.parts = parts
        self.attr = attr

    def __get__(self, obj: object, owner: type | None = None) -> Path:
        directory: Path = getattr(obj, self.attr)
        return directory.joinpath(*self.parts)


def read_json(path: Path) -> Any:
    """A JSON file a build wrote beside its output (a manifest, a tool's report)."""
    return json.loads(path.read_text())
