"""The naming rules of an S3 repository (pure functions: no server)."""

from __future__ import annotations

import pytest

from filerestore.errors import ImageNotFoundError, InvalidRepositoryError, RepositoryEscapeError
from filerestore.source.s3names import (
    MAX_KEY_BYTES,
    normalize_prefix,
    parse_s3_url,
    resolve_name,
)
from tests.imagebuild.hostile import STORE_ESCAPES

PREFIX = normalize_prefix("repo/vm1")


def test_prefix_is_normalized() -> None:
    assert normalize_prefix("") == ""
    assert normalize_prefix("/") == ""
    assert normalize_prefix("repo//vm1/") == "repo/vm1/"
    assert normalize_prefix("./repo/./vm1") == "repo/vm1/"
    with pytest.raises(RepositoryEscapeError):
        normalize_prefix("repo/../other")


@pytest.mark.parametrize(
    ("name", "relative_to", "expected"),
    [
        ("top.qcow2", None, "top.qcow2"),
        ("base.qcow2", "2026/top.qcow2", "2026/base.qcow2"),  # beside the image naming it
        ("../full/base.qcow2", "2026/top.qcow2", "full/base.qcow2"),
        ("./a//b/./c.qcow2", None, "a/b/c.qcow2"),
        ("/repo/vm1/full/base.qcow2", "2026/top.qcow2", "full/base.qcow2"),
        ("//repo/vm1/base.qcow2", None, "base.qcow2"),
        ("dir/x:y.qcow2", None, "dir/x:y.qcow2"),  # a colon after the first / is a name
    ],
)
def test_names_resolve_under_the_prefix(name: str, relative_to: str | None, expected: str) -> None:
    assert resolve_name(PREFIX, name, relative_to) == expected


@pytest.mark.parametrize(("name", "why"), STORE_ESCAPES, ids=[w for _, w in STORE_ESCAPES])
def test_escapes_are_refused(name: str, why: str) -> None:
    with pytest.raises(RepositoryEscapeError):
        resolve_name(PREFIX, name.replace("BUCKET", "test-bucket"))
    with pytest.raises(RepositoryEscapeError):
        resolve_name(PREFIX, name.replace("BUCKET", "test-bucket"), relative_to="top.qcow2")


def test_a_relative_name_cannot_climb_from_a_subdirectory_past_the_prefix() -> None:
    assert resolve_name(PREFIX, "../x.qcow2", "a/top.qcow2") == "x.qcow2"
    with pytest.raises(RepositoryEscapeError):
        resolve_name(PREFIX, "../../x.qcow2", "a/top.qcow2")


def test_nul_and_non_files() -> None:
    with pytest.raises(RepositoryEscapeError, match="NUL"):
        resolve_name(PREFIX, "base\0.qcow2")
    for name in ("", "dir/", ".", "a/.."):
        with pytest.raises(ImageNotFoundError):
            resolve_name(PREFIX, name)


def test_a_key_longer_than_s3_allows_is_not_found() -> None:
    with pytest.raises(ImageNotFoundError, match="longer"):
        resolve_name(PREFIX, "x" * (MAX_KEY_BYTES - len(PREFIX) + 1))
    assert resolve_name(PREFIX, "x" * (MAX_KEY_BYTES - len(PREFIX)))


def test_repository_urls() -> None:
    assert parse_s3_url("s3://backups") == ("backups", "")
    assert parse_s3_url("s3://backups/nightly//vm1/") == ("backups", "nightly/vm1/")
    for bad in (
        "http://backups/x",
        "s3://",
        "s3://UPPER/x",
        "s3://a",
        "s3://b..c/x",
        "s3://ok-bucket/../x",
    ):
        with pytest.raises(InvalidRepositoryError):
            parse_s3_url(bad)
