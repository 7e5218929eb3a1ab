"""The page reads the API's records under exactly the names of /openapi.json.

model.js holds one mapper per schema, named in its ``@param {Schema} x`` JSDoc; every
``x.field`` it reads must be a property of that schema (of each schema, for a mapper of
several: ``{EntryOut | VersionOut}`` reads the fields a listing entry and an index version
share). api.js takes each list out of its
response under one key (``LISTS``), which must be the list property of the route's schema.
No other module reads an API field: the API's names are snake_case, the page's own are not,
so a snake_case property read anywhere else is a field read past the mappers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from filerestore.api.app import create_app
from filerestore.settings import load_settings
from filerestore.web import STATIC_DIR

MAPPER = re.compile(
    r"/\*\*\s*@param\s*\{(?P<schemas>\w+(?:\s*\|\s*\w+)*)\}\s*(?P<var>\w+)\s*\*/\s*\n"
    r"(?:export )?function (?P<name>\w+)\((?P=var)\)\s*\{\n(?P<body>.*?)\n\}\n",
    re.S,
)
LISTS = re.compile(r"export const LISTS = \{(?P<body>.*?)\};", re.S)
SNAKE_READ = re.compile(r"""(?:\??\.|\[["'])(?P<field>[a-z][a-z0-9]*_[a-z0-9_]+)\b""")


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    state = tmp_path_factory.mktemp("state")
    app = create_app(load_settings(state_dir=state, database_url=None), cleanup=False)
    try:
        return app.openapi()
    finally:
        app.state.filerestore.db.dispose()


def properties(openapi: dict[str, Any], schema: str) -> set[str]:
    return set(openapi["components"]["schemas"][schema]["properties"])


def mappers() -> list[re.Match[str]]:
    found = list(MAPPER.finditer((STATIC_DIR / "model.js").read_text()))
    assert len(found) >= 9, "model.js has fewer mappers than the schemas the page reads"
    return found


def test_every_field_a_mapper_reads_is_in_its_schema(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for mapper in mappers():
        var, body = mapper["var"], mapper["body"]
        read = set(re.findall(rf"\b{var}\??\.(\w+)", body))
        assert read, f"{mapper['name']} reads nothing"
        for schema in re.split(r"\s*\|\s*", mapper["schemas"]):
            assert schema in schemas, f"{mapper['name']} names {schema}, which the API lacks"
            unknown = read - properties(openapi, schema)
            assert not unknown, f"{mapper['name']} reads {sorted(unknown)}, not fields of {schema}"


def test_every_list_is_taken_from_its_route_s_list_property(openapi: dict[str, Any]) -> None:
    body = LISTS.search((STATIC_DIR / "api.js").read_text())
    assert body is not None
    pairs = re.findall(r'"(/[\w/]+)":\s*"(\w+)"', body["body"])
    assert pairs
    for path, key in pairs:
        response = openapi["paths"][f"/api/v1{path}"]["get"]["responses"]["200"]
        ref = response["content"]["application/json"]["schema"]["$ref"]
        schema = openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert schema["properties"][key]["type"] == "array", (path, key)


def test_no_other_module_reads_an_api_field() -> None:
    for module in sorted(Path(STATIC_DIR).glob("*.js")):
        if module.name == "model.js":
            continue
        reads = {m["field"] for m in SNAKE_READ.finditer(module.read_text())}
        assert not reads, f"{module.name} reads API fields {sorted(reads)} past model.js"
