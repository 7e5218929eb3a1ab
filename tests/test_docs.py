"""The generated documents under docs/ are the ones the code generates today."""

from __future__ import annotations

from pathlib import Path

from filerestore import docgen, errors

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_generated_documents_are_current() -> None:
    assert docgen.stale(DOCS) == [], "run scripts/gen_docs and commit docs/"


def test_every_error_code_is_listed_once_with_its_status_and_exit_code() -> None:
    rows = [  # the error table's rows: code, status, exit code, meaning (the exit code table has 2)
        cells
        for line in (DOCS / "errors.md").read_text().splitlines()
        if line.startswith("| ") and "`" in line and len(cells := line.split("|")) == 6
    ]
    listed = {row[1].strip().replace("&nbsp;", "").strip("`"): row for row in rows}
    classes = errors.error_classes()
    assert len(listed) == len(rows) == len(classes)
    for cls in classes:
        row = listed[cls.code]
        assert (int(row[2]), int(row[3])) == (cls.http_status, cls.exit_code)


def test_every_metric_is_documented_with_its_type() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from filerestore.api.metrics import Metrics

    exposed = Metrics()  # what a scrape shows: names and types as Prometheus parses them
    exposed.requests.labels(route="/x", method="GET", status="200").inc()
    exposed.latency.labels(route="/x").observe(0.1)
    exposed.bytes_sent.labels(kind="zip").inc()
    assert isinstance(exposed.registry, CollectorRegistry)
    families = {
        f.name: f.type
        for f in text_string_to_metric_families(generate_latest(exposed.registry).decode())
    }
    rows = [
        [cell.strip().strip("`") for cell in line.split("|")[1:3]]
        for line in (DOCS / "metrics.md").read_text().splitlines()
        if line.startswith("| `")
    ]
    # the text parser names counters without their _total suffix
    documented = {name.removesuffix("_total"): kind for name, kind in rows}
    assert documented == families
