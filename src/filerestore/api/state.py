"""What one worker process's application holds: settings, database, sessions, metrics."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from filerestore.api.metrics import Metrics
from filerestore.api.redact import Redactor
from filerestore.db.engine import Database
from filerestore.service.cleanup import CleanupService
from filerestore.service.job_runner import JobRunner
from filerestore.service.refusals import RefusalLog
from filerestore.service.sessions import SessionManager
from filerestore.settings import Settings


@dataclass
class AppState:
    settings: Settings
    db: Database
    sessions: SessionManager
    metrics: Metrics
    cleanup: CleanupService
    jobs: JobRunner
    refusals: RefusalLog
    #: host paths out of what a non-admin is told
    redact: Redactor


def app_state(request: Request) -> AppState:
    state = request.app.state.filerestore
    assert isinstance(state, AppState)
    return state
