"""The test tiers: every test that needs root carries the ``root`` marker.

A test needs root when it uses images built by real tools (loop devices, FUSE, mkfs) or a
real device. The marker is set here, by reachability from each test's code, fixtures and
parameters (tests/tiers.py), not by hand on hundreds of tests; the few tests that need root
in a way code does not show (a ``mount``, ``mknod``, a subprocess that builds images) carry
it by hand. ``pytest --fast`` (``scripts/test --fast``) runs the tests without it: unit tests
over byte-built inputs, parsers, the database on SQLite and PostgreSQL, the API in process.
In that tier the image cache refuses to build, so a test the marking missed fails with its
name instead of quietly making the fast tier slow.
"""

from __future__ import annotations

import pytest

from tests import tiers


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="only the tests that need no root and no built image (not marked root)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("fast"):
        tiers.refuse_builds()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reach = tiers.Reach(tiers.SINKS)
    fast: list[pytest.Item] = []
    slow: list[pytest.Item] = []
    for item in items:
        if tiers.needs_root(item, reach):
            item.add_marker(pytest.mark.root)
            slow.append(item)
        else:
            fast.append(item)
    if config.getoption("fast") and slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = fast
