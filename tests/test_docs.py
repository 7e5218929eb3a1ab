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
