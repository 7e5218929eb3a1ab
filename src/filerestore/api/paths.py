"""The one resolver from a request's ``path`` parameter to a guest path, for every route.

Guest names are bytes, and not always UTF-8. The query string is therefore read here, not
through the framework's already-decoded parameters (which turn undecodable bytes into
U+FFFD and lose them): each ``path`` value is percent-decoded to bytes, then decoded as
UTF-8 with surrogate escapes, the form the fs layer uses for such names. Listings give every
entry a ``path_query`` (its raw bytes percent-encoded) that comes back through here intact.

After that the value is a guest path and nothing else: the fs layer splits it into
components, never climbs above the guest root, and resolves symlinks inside the guest. It
never touches a host path. What this module refuses (400) are values that are never a real
name: a NUL byte, an overlong UTF-8 form of an ASCII character (``%C0%AE`` for ``.``: the
classic filter bypass), and values or components longer than any filesystem allows.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote_to_bytes

from starlette.requests import Request

from filerestore.errors import InvalidParameterError, PathRefusedError

MAX_PATH_BYTES = 4096  # PATH_MAX
MAX_COMPONENT_BYTES = 1020  # 255 UTF-16 units of an NTFS name, at most 4 UTF-8 bytes each
MAX_PATHS = 1000  # several path values (multi-select archives)

# Overlong UTF-8: C0/C1 leads (2-byte forms of ASCII), E0 80..9F, F0 80..8F (RFC 3629 s. 3).
_OVERLONG = re.compile(rb"[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x9f]|\xf0[\x80-\x8f]")


def query_values(request: Request, name: str) -> list[bytes]:
    """Every value of query parameter ``name``, percent-decoded to raw bytes."""
    raw: bytes = request.scope.get("query_string", b"")
    key = name.encode()
    values: list[bytes] = []
    for pair in raw.split(b"&"):
        field, sep, value = pair.partition(b"=")
        if unquote_to_bytes(field.replace(b"+", b" ")) == key and sep:
            values.append(unquote_to_bytes(value.replace(b"+", b" ")))
    return values


def guest_path(raw: bytes) -> str:
    """A guest path from raw request bytes, or PathRefusedError."""
    if b"\x00" in raw:
        raise PathRefusedError("path contains a NUL byte")
    if len(raw) > MAX_PATH_BYTES:
        raise PathRefusedError(f"path is longer than {MAX_PATH_BYTES} bytes")
    if _OVERLONG.search(raw):
        raise PathRefusedError("path contains an overlong UTF-8 sequence")
    if any(len(part) > MAX_COMPONENT_BYTES for part in raw.split(b"/")):
        raise PathRefusedError(f"a path component is longer than {MAX_COMPONENT_BYTES} bytes")
    path = raw.decode("utf-8", "surrogateescape")
    return path if path.startswith("/") else "/" + path


def request_path(request: Request, name: str = "path", default: str | None = "/") -> str:
    """The single guest path a route takes (``default`` when the parameter is absent)."""
    values = query_values(request, name)
    if len(values) > 1:
        raise InvalidParameterError(f"give {name!r} once")
    if not values:
        if default is None:
            raise InvalidParameterError(f"query parameter {name!r} is required")
        return default
    return guest_path(values[0])


def request_paths(request: Request, name: str = "path") -> list[str]:
    """Every guest path given (a multi-select download); at least one."""
    values = query_values(request, name)
    if not values:
        raise InvalidParameterError(f"query parameter {name!r} is required")
    if len(values) > MAX_PATHS:
        raise InvalidParameterError(f"at most {MAX_PATHS} {name!r} values")
    return [guest_path(v) for v in values]


def path_query(path: str) -> str:
    """A guest path as a query value that :func:`guest_path` turns back into it."""
    return quote(path.encode("utf-8", "surrogateescape"), safe="/")


def display(path: str) -> str:
    """A guest path as printable UTF-8 text (undecodable bytes as ``\\xNN``)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
