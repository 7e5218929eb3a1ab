from pathlib import Path

import pytest

from filerestore.errors import UsageError
from filerestore.settings import (
    CONFIG_ENV,
    RepositoryConfig,
    RestoreTargetConfig,
    S3Credentials,
    Settings,
)


def test_every_setting_is_documented():
    for model in (Settings, RepositoryConfig, S3Credentials, RestoreTargetConfig):
        for name, field in model.model_fields.items():
            assert field.description and len(field.description) > 15, f"{model.__name__}.{name}"


def test_defaults(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(f"FILERESTORE_{name.upper()}", raising=False)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    s = Settings()
    assert s.state_dir == Path.home() / ".local/state/filerestore"
    assert s.sqlite_path == s.state_dir / "filerestore.db"
    assert s.effective_database_url == f"sqlite:///{s.state_dir}/filerestore.db"
    assert (s.max_sessions, s.idle_timeout, s.cleanup_interval, s.max_chain_depth) == (
        8,
        3600,
        900,
        64,
    )


def test_environment_and_config_file(monkeypatch, tmp_path):
    config = tmp_path / "filerestore.toml"
    config.write_text(
        'max_sessions = 3\nidle_timeout = 60\n[[repositories]]\nname = "n1"\n'
        'path = "/srv/b"\nkind = "nfs"\n'
    )
    monkeypatch.setenv(CONFIG_ENV, str(config))
    monkeypatch.setenv("FILERESTORE_MAX_SESSIONS", "5")  # the environment wins over the file
    monkeypatch.setenv("FILERESTORE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    s = Settings()
    assert s.max_sessions == 5
    assert s.idle_timeout == 60
    assert s.effective_database_url == "postgresql+psycopg://u@h/db"
    assert s.repositories == [RepositoryConfig(name="n1", path="/srv/b", kind="nfs")]


def test_missing_config_file_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(UsageError, match="does not exist"):
        Settings()
