"""The documents under docs/: the generated ones are what the code generates today, every
setting, command and route is documented, and no link leads outside the clone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from filerestore import docgen, errors
from filerestore.docgen import cli_doc
from filerestore.settings import RepositoryConfig, RestoreTargetConfig, S3Credentials, Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_generated_documents_are_current() -> None:
    assert docgen.stale(DOCS) == [], "run scripts/gen_docs and commit docs/"


def table_rows(name: str) -> list[list[str]]:
    """The cells of every table row that names something in backticks."""
    return [
        [cell.strip() for cell in line.split("|")[1:-1]]
        for line in (DOCS / name).read_text().splitlines()
        if line.startswith("| ") and "`" in line
    ]


def test_every_error_code_is_listed_once_with_its_status_and_exit_code() -> None:
    # the error table's rows: code, status, exit code, meaning (the exit code table has 2)
    rows = [row for row in table_rows("errors.md") if len(row) == 4]
    listed = {row[0].replace("&nbsp;", "").strip("`"): row for row in rows}
    classes = errors.error_classes()
    assert len(listed) == len(rows) == len(classes)
    for cls in classes:
        row = listed[cls.code]
        assert (int(row[1]), int(row[2])) == (cls.http_status, cls.exit_code)


def test_every_setting_is_listed_with_its_variable_and_default() -> None:
    rows = {row[0].strip("`"): row for row in table_rows("settings.md")}
    for name in Settings.model_fields:
        assert rows[name][1] == f"`FILERESTORE_{name.upper()}`"
    tables = (
        set(RepositoryConfig.model_fields)
        | set(S3Credentials.model_fields)
        | set(RestoreTargetConfig.model_fields)
    )
    assert set(rows) == set(Settings.model_fields) | tables
    assert rows["max_sessions"][3] == f"`{Settings.model_fields['max_sessions'].default}`"


def test_every_command_is_in_the_cli_reference() -> None:
    text = (DOCS / "cli.md").read_text()
    headings = re.findall(r"^## (filerestore.*)$", text, re.MULTILINE)
    assert headings == [" ".join(["filerestore", *w]) for w in cli_doc.command_paths()]
    for top in ("inspect", "ls", "get", "mount", "serve", "db upgrade", "token create"):
        assert f"## filerestore {top}\n" in text


def test_the_reference_is_what_the_installed_command_prints() -> None:
    # the console script in a process of its own, as a user runs it
    script = Path(sys.executable).with_name("filerestore")
    shown = subprocess.run(
        [script, "ls", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": cli_doc.WIDTH},
    ).stdout
    assert f"```text\n{shown.rstrip()}\n```" in (DOCS / "cli.md").read_text()


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    from filerestore.api.app import create_app
    from filerestore.settings import load_settings

    state = tmp_path_factory.mktemp("openapi")
    app = create_app(load_settings(state_dir=state, database_url=None), cleanup=False)
    paths: dict[str, dict[str, object]] = app.openapi()["paths"]
    return paths


def test_every_route_is_in_the_api_guide(openapi: dict[str, dict[str, object]]) -> None:
    guide = (DOCS / "api.md").read_text()
    routes = [f"{method.upper()} {path}" for path, ops in openapi.items() for method in ops]
    assert len(routes) > 10
    missing = [r for r in routes if f"`{r}`" not in guide]
    assert missing == []


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "CONTRIBUTING.md", *DOCS.glob("*.md")]


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_clone(doc: Path) -> None:
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in the same page
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name} links outside the clone: {target}"
        assert path.exists(), f"{doc.name} links to a missing {target}"


#: what the project's own files may not name: a place beside the clone (the design once lived
#: in ../shared/DESIGN.md, outside the repository)
OUTSIDE = re.compile(r"\.\./shared\b|DESIGN\.md")
#: generated, installed or cached trees, not the project's own files
NOT_OURS = {".git", ".venv", "node_modules", ".cache", "__pycache__", ".mypy_cache"}
TEXT = {".py", ".md", ".toml", ".js", ".html", ".css", ".json", ".service", ".cfg", ".txt", ""}


def own_text_files() -> list[Path]:
    found = []
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in NOT_OURS and not d.startswith(".pytest")]
        paths = (Path(top, f) for f in files if Path(f).suffix in TEXT)
        found += [p for p in paths if not p.is_symlink()]  # the demo tree's links are data
    return found


def test_no_file_names_a_place_outside_the_clone() -> None:
    files = own_text_files()
    assert ROOT / "scripts" / "check" in files and ROOT / "README.md" in files
    this = Path(__file__).resolve()
    named = [
        str(f.relative_to(ROOT))
        for f in files
        if f != this and OUTSIDE.search(f.read_bytes().decode("utf-8", "replace"))
    ]
    assert named == []


def test_the_readme_links_every_document() -> None:
    readme = (ROOT / "README.md").read_text()
    for doc in ("CHANGELOG.md", "CONTRIBUTING.md", *(f"docs/{p.name}" for p in DOCS.glob("*.md"))):
        assert f"]({doc})" in readme, doc


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
