"""What a harness is, and what counts as a finding.

A harness turns one fuzz input into work on the product (open an image, list a directory,
parse a header) and says which errors that work may end in. :func:`check_one` runs it and
raises :class:`Finding` for anything else:

- an exception outside :class:`~filerestore.errors.FileRestoreError` (a crash: a bare
  ``ValueError``, ``IndexError``, ``struct.error``, ``RecursionError`` ...);
- a FileRestoreError of a class the harness does not expect there (an internal error: a
  ``UsageError`` from parsing a header means the parser blamed the caller);
- an error without a one-line reason (empty, or several lines);
- a broken invariant the harness checks itself (a range outside the file, a path that
  climbs above the root ...).

Hangs and over-budget allocations are watched from outside the input: libFuzzer's
``-timeout`` and ``-rss_limit_mb`` in a fuzz run (see :mod:`fuzz.run`), and in the
regression tests pytest's timeout and a ``tracemalloc`` peak per input.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from filerestore.errors import FileRestoreError

OneInput = Callable[[bytes], None]


class Finding(Exception):
    """An input did something outside its harness's contract (the message says what)."""


@dataclass(frozen=True)
class Harness:
    """One fuzz target. ``setup`` builds or loads what it needs once (seed images) and
    returns the function run per input; ``seeds`` gives the initial corpus."""

    name: str
    doc: str
    setup: Callable[[], OneInput]
    seeds: Callable[[], list[bytes]]
    expected: tuple[type[FileRestoreError], ...]
    #: seconds one input may take before libFuzzer reports a hang
    timeout: int = 10
    #: MiB the process may grow by over its size before the first input
    rss_budget_mb: int = 512
    #: libFuzzer's -max_len: no input is longer
    max_len: int = 4096
    #: tokens for libFuzzer's dictionary (magic numbers, keywords)
    dictionary: tuple[bytes, ...] = field(default=())


def check_one(one: OneInput, data: bytes, expected: tuple[type[FileRestoreError], ...]) -> None:
    """Run ``one(data)``; raise Finding unless it returns or raises an expected error with a
    one-line reason."""
    try:
        one(data)
    except FileRestoreError as exc:
        if not isinstance(exc, expected):
            raise Finding(
                f"unexpected error class {type(exc).__name__} ({exc.code}): {exc}"
            ) from exc
        reason = str(exc)
        if not reason.strip() or "\n" in reason:
            raise Finding(f"{type(exc).__name__} without a one-line reason: {reason!r}") from exc
    except Finding:
        raise
    except RecursionError as exc:  # before Exception: it is one
        raise Finding(f"recursion: {exc}{_where(exc)}") from exc
    except Exception as exc:
        raise Finding(f"escaped the error tree: {type(exc).__name__}: {exc}{_where(exc)}") from exc


def _where(exc: BaseException) -> str:
    """The innermost frames of ``exc``'s traceback (libFuzzer shows only the Finding's)."""
    frames = traceback.extract_tb(exc.__traceback__)[-8:]
    return "\n" + "".join(traceback.format_list(frames)).rstrip()


def require(condition: bool, what: str) -> None:
    """An invariant of the product a harness checks on a successful outcome."""
    if not condition:
        raise Finding(f"invariant broken: {what}")
