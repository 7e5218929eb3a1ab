"""The error tree by concern: who is at fault decides the category, status and exit code."""

from __future__ import annotations

import pytest

from filerestore import errors
from filerestore.api.errors import error_response


def test_every_class_is_under_exactly_one_concern() -> None:
    concerns = (errors.RequestError, errors.ImageError, errors.ServiceUnavailableError)
    for cls in errors.error_classes()[1:]:
        assert sum(issubclass(cls, c) for c in concerns) == 1, cls.__name__


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in errors.error_classes()]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    "cls",
    [errors.PathRefusedError, errors.SymlinkLoopError, errors.DestinationEscapeError],
)
def test_a_refused_request_is_the_request_s_fault(cls: type[errors.FileRestoreError]) -> None:
    assert issubclass(cls, errors.RequestError) and not issubclass(cls, errors.ImageError)
    assert (cls.http_status, cls.exit_code) == (400, 5)


@pytest.mark.parametrize(
    "cls",
    [
        errors.BackingFileRefusedError,
        errors.RepositoryEscapeError,
        errors.BackingChainLoopError,
        errors.BackingChainTooDeepError,
    ],
)
def test_a_hostile_image_is_the_image_s_fault(cls: type[errors.FileRestoreError]) -> None:
    assert issubclass(cls, errors.HostileImageError) and issubclass(cls, errors.ImageError)
    assert (cls.http_status, cls.exit_code) == (422, 5)


def test_an_unreachable_repository_is_unavailable_never_not_found() -> None:
    exc = errors.RepositoryIOError("cannot open srv/disk0.qcow2: Stale file handle")
    assert not isinstance(exc, errors.NotFoundError)
    assert isinstance(exc, errors.RepositoryUnavailableError)
    response = error_response(exc)
    assert response.status_code == 503
    assert b'"code":"repository_io"' in response.body
    assert exc.exit_code == errors.ExitCode.UNAVAILABLE
    assert int(errors.ExitCode.UNAVAILABLE) == 6
