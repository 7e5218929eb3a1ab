"""The application factory each ``filerestore serve`` worker process runs.

A hostile image can make a native parser allocate without bound; a worker therefore caps
its own address space (``worker_memory_limit``, RLIMIT_AS) before building the
application, so such an image kills one worker (whose requests fail) and the supervisor
starts another, rather than the host's OOM killer choosing a victim.
"""

from __future__ import annotations

import resource

from fastapi import FastAPI

from filerestore.api.app import create_app
from filerestore.settings import load_settings


def limit_memory(limit: int) -> None:
    if limit <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def worker_app() -> FastAPI:
    settings = load_settings()
    limit = settings.worker_memory_limit
    limit_memory(limit)
    # logging is configured by uvicorn in this process already (serve's log_config)
    return create_app(settings)
