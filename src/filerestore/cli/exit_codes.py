"""The one table from filerestore's error categories to the CLI's exit codes.

Every error class inherits its code from the nearest class listed here, so a new subclass of
an existing category needs no entry; a new category does (tests/cli checks every class).
"""

from __future__ import annotations

from filerestore import errors

OK = 0
FAILURE = 1
USAGE = 2
NOT_FOUND = 3
BAD_IMAGE = 4
REFUSED = 5
INTERRUPTED = 130  # 128 + SIGINT, as shells report it

EXIT_CODES: dict[type[errors.FileRestoreError], int] = {
    errors.FileRestoreError: FAILURE,
    errors.UsageError: USAGE,
    errors.NotFoundError: NOT_FOUND,
    errors.ImageError: BAD_IMAGE,
    errors.SafetyError: REFUSED,
    errors.ConflictError: FAILURE,
    errors.ServiceUnavailableError: FAILURE,
    # the API's token checks; a CLI command that manages tokens may still raise them
    errors.AuthenticationError: FAILURE,
    errors.PermissionDeniedError: FAILURE,
}


def table_entry(cls: type[errors.FileRestoreError]) -> type[errors.FileRestoreError]:
    """The class in EXIT_CODES that decides ``cls``'s exit code."""
    for base in cls.__mro__:
        if base in EXIT_CODES:
            return base
    raise LookupError(f"{cls.__name__} is not a FileRestoreError")


def exit_code(exc: errors.FileRestoreError) -> int:
    return EXIT_CODES[table_entry(type(exc))]
