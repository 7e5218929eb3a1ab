"""Prometheus metrics, served at /metrics in the text format, summed over the workers.

``serve --workers N`` (N > 1) gives its workers one directory for Prometheus' multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR``, made empty by ``serve`` and removed when it exits): each
worker writes its values into files there, and a scrape, whichever worker answers it, reads
them all. Counters and histograms keep a dead worker's counts (a restart does not make a
total go back); the gauges count live workers only: a worker marks itself dead when it stops,
and a scrape marks the ones that vanished without stopping (killed). With one worker (or an
application built directly, as the tests do) the values stay in the process.

Every metric is listed, with its type and labels, in docs/metrics.md (generated from
:func:`metric_docs`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_ENV", "Metrics", "metric_docs"]

#: prometheus_client reads it when it is first imported: set before the workers start
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db")

# the *_created samples exist in one process only (the multiprocess mode has none): off, so a
# scrape shows the same metrics with one worker or several
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "filerestore_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "filerestore_http_request_seconds",
            "Seconds from a request to its response head, by route template.",
            ["route"],
            registry=r,
        )
        self.bytes_sent = Counter(
            "filerestore_download_bytes_total",
            "Bytes of downloads sent, by kind (file, zip, tar, tar.gz).",
            ["kind"],
            registry=r,
        )
        self.downloads = Gauge(
            "filerestore_downloads_in_progress",
            "Downloads being streamed now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.auth_failures = Counter(
            "filerestore_auth_failures_total",
            "Requests refused for want of a valid token.",
            registry=r,
        )
        self.mounts = Counter("filerestore_mounts_total", "Restore sessions opened.", registry=r)
        self.workers = Gauge(
            "filerestore_workers",
            "Worker processes serving the API now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.workers.set(1)

    def render(self) -> bytes:
        """The text exposition: every worker's values when they share a directory."""
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        _forget_vanished_workers(Path(directory))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def stopped(self) -> None:
        """This worker is stopping: its gauges no longer count."""
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), path=directory)  # type: ignore[no-untyped-call]


def _forget_vanished_workers(directory: Path) -> None:
    """Mark dead the workers whose live gauges remain but whose process is gone (killed)."""
    from prometheus_client import multiprocess

    pids = {int(m.group(1)) for f in directory.iterdir() if (m := _LIVE_FILE.fullmatch(f.name))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path=str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, another user's


def metric_docs() -> list[tuple[str, str, tuple[str, ...], str]]:
    """(name, type, labels, help) of every metric, as a scrape names them."""
    out = []
    for metric in vars(Metrics()).values():
        if isinstance(metric, Counter | Gauge | Histogram):
            name = metric._name + ("_total" if isinstance(metric, Counter) else "")
            kind = type(metric).__name__.lower()
            out.append((name, kind, tuple(metric._labelnames), metric._documentation))
    return out
