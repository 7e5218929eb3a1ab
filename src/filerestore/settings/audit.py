"""The audit trail and the service's log."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt

from filerestore.settings.group import SettingsGroup


class AuditSettings(SettingsGroup):
    audit_text_limit: Annotated[int, Field(ge=64, le=1 << 20)] = 1024
    """Characters of a path or a detail one audit row keeps; a longer one is cut and says how much
    was left out, so no request can make a row large."""
    audit_retention_days: PositiveFloat = 90.0
    """Days an audit row is kept; the cleanup worker deletes older rows, in batches."""
    audit_fail_open: bool = False
    """Serve a download even when its audit row cannot be written (the event then only reaches the
    log). Default false: such a download is refused (fail closed)."""
    refusal_log_rate: PositiveFloat = 1.0
    """Log lines per second (per worker) for requests refused for want of a valid token; they are
    counted in metrics and never written to the database. Refusals beyond the rate are counted
    in the next line's 'suppressed'."""
    refusal_log_burst: PositiveInt = 20
    """Lines of refused unauthenticated requests logged at once before refusal_log_rate applies."""
    log_format: Literal["auto", "json", "text"] = "auto"
    """Format of the service's log lines on stderr (``serve --log-format`` overrides): json, one
    JSON object a line; text, for people; auto, text when stderr is a terminal, else JSON."""
