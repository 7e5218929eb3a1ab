"""Property-based requests generated from the server's own OpenAPI schema by schemathesis:
none may be answered with a 500 (a 500 is a bug). A 5xx is accepted only when it is one of
the error tree's deliberate answers about the host's state (503 ``repository_unavailable``
for a share that is not mounted, 507 ``state_disk_full``), named by its code. Bounded: a few
examples per operation, data that fits the schema and data that breaks it.

The operations are driven through hypothesis directly rather than schemathesis' pytest
plugin, which does not run under pytest 9.
"""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from requests.structures import CaseInsensitiveDict
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from filerestore import errors
from tests.api.conftest import Env

# the codes the error tree answers with a 5xx on purpose (the host's state, not a bug)
DELIBERATE_5XX = {c.code: c.http_status for c in errors.error_classes() if c.http_status > 500}


def _deliberate(response: Any) -> bool:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(DELIBERATE_5XX.get(code) == response.status_code)


MAX_EXAMPLES = 12


def _is_root_or_big(path: object) -> bool:
    # an archive of "/" holds the 5 GiB sparse file: correct, but minutes of test time
    if not isinstance(path, str):
        return False
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    return not parts or "big" in path


def test_no_server_errors(api: Env) -> None:
    schema = schemathesis.openapi.from_dict(httpx.get(api.url + "/openapi.json").json())
    mount = api.mount("dave", "ext4")
    # an admin token reaches every operation (POST /backups too) and sees dave's session
    auth = {"Authorization": f"Bearer {api.tokens['admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    operations.sort(key=lambda op: op.method.upper() == "DELETE")  # the session ends last
    assert len(operations) >= 14
    seen: dict[str, set[int]] = {}

    for operation, mode in [(op, m) for op in operations for m in GenerationMode]:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case[Any]) -> None:
            if case.path_parameters and "mount_id" in case.path_parameters:
                case.path_parameters["mount_id"] = mount
            if case.query and "download" in case.path:
                paths = case.query.get("path")
                values = paths if isinstance(paths, list) else [paths]
                if any(_is_root_or_big(v) for v in values):
                    case.query["path"] = "/docs"
            headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict(case.headers or {})
            headers.update(auth)
            case.headers = headers
            response = case.call(base_url=api.url, timeout=60)
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            if not _deliberate(response):
                case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except Unsatisfiable:
            # an operation without parameters or body has no invalid input to make
            assert mode is GenerationMode.NEGATIVE, operation.label
    assert len(seen) == len(operations)
    print({label: sorted(codes) for label, codes in seen.items()})
