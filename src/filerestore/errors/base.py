"""The root of the error tree and the CLI's exit codes."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar


class ExitCode(IntEnum):
    """The CLI's exit codes (the errors' ``exit_code`` values, and the two that are not errors)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_FOUND = 3
    BAD_IMAGE = 4
    REFUSED = 5
    UNAVAILABLE = 6
    #: a restore finished, but skipped entries it could not read or write (listed on stderr)
    PARTIAL = 7
    #: ``serve`` cannot listen: another program holds the address and port
    PORT_IN_USE = 8
    INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class FileRestoreError(Exception):
    """Base of all errors filerestore reports to its users."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[ExitCode] = ExitCode.FAILURE

    def __init_subclass__(
        cls,
        *,
        code: str,
        http_status: int | None = None,
        exit_code: ExitCode | None = None,
        **kwargs: Any,
    ) -> None:
        """Every class of the tree names its code; status and exit code where they change."""
        super().__init_subclass__(**kwargs)
        cls.code = code
        if http_status is not None:
            cls.http_status = http_status
        if exit_code is not None:
            cls.exit_code = exit_code
