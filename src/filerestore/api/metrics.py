"""Prometheus metrics of one worker process, served at /metrics in the text format.

Each worker keeps its own registry (no multiprocess directory to manage): a scrape sees the
worker that answered it, labelled by ``pid``, which is what Prometheus' own guidance for
pre-fork servers without a shared directory amounts to.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        pid = str(os.getpid())
        r = self.registry
        self.requests = Counter(
            "filerestore_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "filerestore_http_request_seconds",
            "Time to the response head, by route template.",
            ["route"],
            registry=r,
        )
        self.bytes_sent = Counter(
            "filerestore_download_bytes_total",
            "Bytes of file and archive downloads sent.",
            ["kind"],
            registry=r,
        )
        self.downloads = Gauge(
            "filerestore_downloads_in_progress", "Downloads being streamed.", registry=r
        )
        self.auth_failures = Counter(
            "filerestore_auth_failures_total",
            "Requests refused for want of a valid token.",
            registry=r,
        )
        self.mounts = Counter(
            "filerestore_mounts_total", "Sessions opened by this worker.", registry=r
        )
        info = Gauge("filerestore_worker_info", "This worker process.", ["pid"], registry=r)
        info.labels(pid=pid).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
