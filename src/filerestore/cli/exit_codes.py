"""The CLI's exit codes: each error class carries its own (see :mod:`filerestore.errors`).

``EXIT_CODES`` lists the classes that set an exit code themselves (the categories, and the
few subclasses that differ from theirs); every other class inherits its category's.
"""

from __future__ import annotations

from filerestore import errors
from filerestore.errors import ExitCode

OK = ExitCode.OK
FAILURE = ExitCode.FAILURE
USAGE = ExitCode.USAGE
NOT_FOUND = ExitCode.NOT_FOUND
BAD_IMAGE = ExitCode.BAD_IMAGE
REFUSED = ExitCode.REFUSED
UNAVAILABLE = ExitCode.UNAVAILABLE
PARTIAL = ExitCode.PARTIAL
INTERRUPTED = ExitCode.INTERRUPTED

EXIT_CODES: dict[type[errors.FileRestoreError], int] = {
    cls: cls.exit_code for cls in errors.error_classes() if "exit_code" in vars(cls)
}


def table_entry(cls: type[errors.FileRestoreError]) -> type[errors.FileRestoreError]:
    """The class in EXIT_CODES that decides ``cls``'s exit code."""
    for base in cls.__mro__:
        if base in EXIT_CODES:
            return base
    raise LookupError(f"{cls.__name__} is not a FileRestoreError")


def exit_code(exc: errors.FileRestoreError) -> int:
    return int(exc.exit_code)
