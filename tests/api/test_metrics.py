"""/metrics sums the workers (issue 14, item 14): a real ``serve --workers 2``; the expected
counts are the requests this test made, and every scrape, whichever worker answers it, shows
the same figures. A killed worker's counts stay; the live-worker gauge does not count it."""

from __future__ import annotations

import os
import signal
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import API, Env

URL = f"{API}/restore/resources"
ROUTE = "/restore/resources"  # the label is the route template, as the router holds it


def scrape(api: Env) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with api.client() as c:  # a new connection: any worker may answer
        r = c.get("/metrics")
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def resources_requests(values: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    key = (
        "filerestore_http_requests_total",
        (("method", "GET"), ("route", ROUTE), ("status", "200")),
    )
    return values.get(key, 0.0)


def served_by_both_workers(api: Env, count: int) -> set[int]:
    """Make ``count`` requests to URL, each on a new connection; the workers that answered."""
    pids = set()
    for _ in range(count):
        with api.client() as c:
            r = c.get(URL)
            assert r.status_code == 200
            pids.add(int(r.json()["worker_pid"]))
    return pids


def test_every_scrape_sums_all_workers(api: Env) -> None:
    before = resources_requests(scrape(api))
    pids = served_by_both_workers(api, 40)
    assert pids == set(api.server.worker_pids()), "both workers answered some requests"
    scrapes = [scrape(api) for _ in range(12)]
    assert {resources_requests(v) for v in scrapes} == {before + 40}
    for values in scrapes:
        assert values[("filerestore_workers", ())] == 2
        count = values[("filerestore_http_request_seconds_count", (("route", ROUTE),))]
        assert count >= before + 40


def test_a_killed_workers_counts_stay_and_it_is_no_longer_live(api: Env) -> None:
    served_by_both_workers(api, 10)
    before = resources_requests(scrape(api))
    victim = max(api.server.worker_pids())
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    now = api.server.replaced(victim, 30)
    assert victim not in now and len(now) == 2
    made, answered = 0, set[int]()
    while answered != now and time.monotonic() < deadline + 30:  # the new worker is serving
        answered |= served_by_both_workers(api, 1)
        made += 1
    assert answered == now
    for _ in range(6):
        values = scrape(api)
        assert resources_requests(values) == before + made  # the dead worker's counts stay
        assert values[("filerestore_workers", ())] == 2  # the replacement, not the dead one
