"""deploy/filerestore.toml, the example settings file: valid for the settings model, every
setting named, its commented values the defaults; the systemd unit starts the service with a
file at the place the example is meant for. (The deployment recipes themselves are checked by
their own linters in tests/test_deploy.py.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from filerestore.settings import CONFIG_ENV, RepositoryConfig, Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_the_example_settings_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"FILERESTORE_{name.upper()}", raising=False)
    monkeypatch.setenv(CONFIG_ENV, str(DEPLOY / "filerestore.toml"))
    settings = load_settings()
    raw = tomllib.loads((DEPLOY / "filerestore.toml").read_text())
    assert settings.state_dir == Path(raw["state_dir"])
    assert settings.max_sessions == raw["max_sessions"]
    assert settings.repositories == [RepositoryConfig(**r) for r in raw["repositories"]]
    assert {n: c.env_prefix for n, c in settings.s3_credentials.items()} == {
        n: c["env_prefix"] for n, c in raw["s3_credentials"].items()
    }


def test_the_example_settings_file_names_every_setting() -> None:
    text = (DEPLOY / "filerestore.toml").read_text()
    keys = set(re.findall(r"^#? ?([a-z0-9_]+) = ", text, re.MULTILINE))
    tables = {"repositories", "s3_credentials", "restore_targets"}
    assert set(Settings.model_fields) - tables <= keys
    assert "[[repositories]]" in text and "[s3_credentials." in text


def test_commented_defaults_are_the_defaults() -> None:
    text = (DEPLOY / "filerestore.toml").read_text()
    for name, value in re.findall(r"^# ([a-z0-9_]+) = (.+)$", text, re.MULTILINE):
        default = Settings.model_fields[name].get_default(call_default_factory=True)
        if default is not None:
            assert tomllib.loads(f"v = {value}")["v"] == default, name


def test_the_unit_runs_serve_with_a_settings_file_where_the_example_goes() -> None:
    unit = (DEPLOY / "systemd" / "filerestore.service").read_text()
    assert re.search(r"^ExecStart=\S+/filerestore serve ", unit, re.MULTILINE)
    assert f"Environment={CONFIG_ENV}=/etc/filerestore/filerestore.toml" in unit
    raw = tomllib.loads((DEPLOY / "filerestore.toml").read_text())
    assert f"Environment=FILERESTORE_STATE_DIR={raw['state_dir']}" in unit
