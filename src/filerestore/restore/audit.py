"""Audit trail: every mount, unmount, download, refusal and auth failure is an
``audit_events`` row and one JSON line on the ``filerestore.audit`` logger.

Writing the trail must never turn a served request into a failed one: a database error
while recording is logged (the JSON line is still written) and swallowed.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from filerestore.db.engine import Database
from filerestore.db.models import AuditEvent
from filerestore.errors import FileRestoreError

log = logging.getLogger("filerestore.audit")


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def log_line(
    actor: str,
    action: str,
    outcome: str,
    *,
    backup_id: int | None = None,
    mount_id: str | None = None,
    path: str | None = None,
    size: int | None = None,
    detail: str | None = None,
) -> dict[str, object]:
    """The JSON log line of an event (for events whose row another writer adds, such as
    the session manager's mount and unmount rows); returns the event."""
    event: dict[str, object] = {
        "time": datetime.now(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "outcome": outcome,
        "backup_id": backup_id,
        "mount_id": mount_id,
        "path": _text(path),
        "bytes": size,
        "detail": _text(detail),
    }
    log.info(json.dumps(event, ensure_ascii=False))
    return event


def record(
    db: Database,
    actor: str,
    action: str,
    outcome: str,
    *,
    backup_id: int | None = None,
    mount_id: str | None = None,
    path: str | None = None,
    size: int | None = None,
    detail: str | None = None,
) -> None:
    """Write one audit event (row and JSON log line)."""
    now = datetime.now(UTC)
    log_line(
        actor,
        action,
        outcome,
        backup_id=backup_id,
        mount_id=mount_id,
        path=path,
        size=size,
        detail=detail,
    )
    try:
        with db.write() as session:
            session.add(
                AuditEvent(
                    time=now,
                    actor=actor[:255],
                    action=action[:64],
                    outcome=outcome[:32],
                    backup_id=backup_id,
                    mount_id=mount_id,
                    path=_text(path),
                    bytes=size,
                    detail=_text(detail),
                )
            )
    except FileRestoreError:
        log.exception("could not record audit event %s/%s", action, outcome)
