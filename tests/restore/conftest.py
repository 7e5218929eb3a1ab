"""Fixtures of the browsing and archive tests: the image they read and its source tree
(tests/imagebuild/restore_tree.py)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filerestore.blockio import FileReader
from filerestore.fs import open_filesystem
from filerestore.fs.base import Filesystem
from tests.cli.conftest import ext4, two  # noqa: F401  (fixtures for test_stack.py)
from tests.imagebuild.restore_tree import Source, restore_image, restore_tree


@pytest.fixture(scope="session")
def source() -> Source:
    return Source(restore_tree(), restore_image())


@pytest.fixture(scope="session")
def fs(source: Source) -> Iterator[Filesystem[Any]]:
    reader = FileReader(source.image)
    opened = open_filesystem(reader)
    try:
        yield opened
    finally:
        opened.close()
        reader.close()


def listdir(path: Path) -> list[str]:
    return [p.name for p in path.iterdir()]


def archivable(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)
