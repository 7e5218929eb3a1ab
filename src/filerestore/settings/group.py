"""The base of every group of settings: a field's description is the docstring below it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SettingsGroup(BaseModel):
    """Settings of one concern; :class:`~filerestore.settings.Settings` joins the groups."""

    model_config = ConfigDict(use_attribute_docstrings=True)
