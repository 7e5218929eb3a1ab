"""Bearer authentication for every route but /health, as FastAPI dependencies.

A failure is an AuthenticationError (401, ``WWW-Authenticate: Bearer``), counted in the
``filerestore_auth_failures_total`` metric and logged at a bounded rate (no audit row:
nothing an unauthenticated client sends may grow storage).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from filerestore.api.state import AppState, app_state
from filerestore.errors import AuthenticationError, PermissionDeniedError
from filerestore.service.principal import Principal
from filerestore.service.tokens import check_token

_bearer = HTTPBearer(auto_error=False, description="A token from `filerestore token create`.")


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    state = app_state(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        await _refuse(state, request, "missing bearer token")
        raise AuthenticationError("missing bearer token")
    try:
        info = await run_in_threadpool(check_token, state.db, credentials.credentials)
    except AuthenticationError as exc:
        await _refuse(state, request, str(exc))
        raise
    who = Principal.token(info.id, info.name, info.admin)
    request.state.principal = who
    return who


async def _refuse(state: AppState, request: Request, reason: str) -> None:
    """Counted and logged at a bounded rate, never a database row: anyone can send these
    (see :mod:`filerestore.service.refusals`)."""
    refused_anonymously(state, request, reason)


def refused_anonymously(state: AppState, request: Request, reason: str) -> None:
    client = request.client.host if request.client else "unknown"
    state.metrics.auth_failures.inc()
    state.refusals.refused(client, request.url.path, reason)


async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.admin:
        raise PermissionDeniedError("this needs an admin token")
    return who


Caller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]
