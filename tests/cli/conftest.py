"""The GPT + ext4 images (tests/imagebuild/gpt_ext4.py) that the CLI and open_stack tests share,
and the environment that points the commands at a test database."""

from __future__ import annotations

import pytest

from filerestore.settings import Settings
from tests.imagebuild import gpt_ext4 as images


@pytest.fixture(scope="module")
def ext4() -> images.Built:
    return images.single_ext4()


@pytest.fixture(scope="module")
def two() -> images.Built:
    return images.two_ext4()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    """The commands' environment set to ``settings`` (the test module's database fixture from
    tests/dbfixtures.py): its state directory and database, no configuration file."""
    monkeypatch.setenv("FILERESTORE_STATE_DIR", str(settings.state_dir))
    monkeypatch.delenv("FILERESTORE_CONFIG", raising=False)
    if settings.database_url:
        monkeypatch.setenv("FILERESTORE_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("FILERESTORE_DATABASE_URL", raising=False)
    return settings
