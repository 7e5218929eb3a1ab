"""Every failure of a filesystem parser becomes a corrupt-image error with a one-line reason.

Our parsers and the libraries under them (libyal bindings, dissect.btrfs) meet hostile bytes
in ways no check foresees: an index past a buffer, a struct too short, a key that is not
there, a number too large for a C type, a name that does not decode, a recursion that does
not end, an allocation that fails. Whatever a backend lets escape is translated here, at the
boundary of the :class:`~filerestore.fs.base.Filesystem` interface, so that adapters only
ever see the error tree (exit 4, HTTP 422), never "unexpected ValueError". ``OSError`` is
left alone where it comes from the host (a failing disk or share is not a corrupt image);
the libyal backends translate their libraries' ``OSError`` themselves.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator

from filerestore.errors import FileRestoreError, FilesystemError
from filerestore.fs.contents import FileContents

#: what a parser raises on bytes it did not expect (MemoryError: a size taken from the image
#: asked for more memory than the process may have)
PARSER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # UnicodeError is one
    KeyError,
    IndexError,
    OverflowError,
    struct.error,
    RecursionError,
    ZeroDivisionError,
    EOFError,
    MemoryError,
    TypeError,
    AttributeError,
)


def corrupt_error(kind: str, what: str, exc: BaseException) -> FilesystemError:
    """The error for ``exc`` met while doing ``what`` on a ``kind`` filesystem: one line."""
    detail = " ".join(str(exc).split())[:200] or "no detail"
    return FilesystemError(
        f"{kind or 'filesystem'}: cannot {what}: corrupt or unsupported structure "
        f"({type(exc).__name__}: {detail})"
    )


@contextlib.contextmanager
def parse_errors(kind: str, what: str) -> Iterator[None]:
    """Translate a parser's stray exception (``PARSER_ERRORS``) into FilesystemError."""
    try:
        yield
    except FileRestoreError:
        raise
    except PARSER_ERRORS as exc:
        raise corrupt_error(kind, what, exc) from exc


class GuardedContents:
    """A file's contents whose reads raise only the error tree (see the module docstring).

    The reader contract's own ``ValueError`` for a negative offset or length is a caller's
    mistake, not the image's, and is raised before the inner reader is asked.
    """

    def __init__(self, inner: FileContents, kind: str, path: str) -> None:
        self._inner = inner
        self._kind = kind
        self._path = path
        self._size = inner.size

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"negative offset or length: {offset}, {length}")
        with parse_errors(self._kind, f"read {self._path}"):
            return self._inner.read_at(offset, length)

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        with parse_errors(self._kind, f"map the data of {self._path}"):
            yield from self._inner.data_ranges()
