"""HTTP harness: the request path parameter resolver (api/paths.py) and the Range parser.

The input is split into a raw query string, a Range header value and a file size. Checked:

- ``request_path`` / ``request_paths`` give a guest path or a PathRefusedError /
  InvalidParameterError, nothing else; a guest path is absolute, holds no NUL, and
  ``path_query`` of it comes back through the resolver as the same path; ``display`` of
  it is printable UTF-8.
- ``parse_range`` gives None (send the whole file), a range inside the file, or
  RangeNotSatisfiableError; a range it accepts agrees with an independent reading of the
  RFC 9110 grammar (ASCII digits, one ``bytes=`` range).
- ``content_disposition`` of a name gives a header value that is ASCII.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import unquote_to_bytes

import atheris
from starlette.requests import Request

from filerestore.api.downloads import ByteRange, content_disposition, parse_range
from filerestore.api.paths import (
    display,
    guest_path,
    path_query,
    request_path,
    request_paths,
)
from filerestore.errors import InvalidParameterError, PathRefusedError, RangeNotSatisfiableError
from fuzz.harness import Harness, OneInput, require

# RFC 9110 14.1.2: int-range = first-pos "-" [ last-pos ], suffix-range = "-" suffix-length,
# digits are ASCII; the parser also allows spaces around "=" and "-".
_ORACLE = re.compile(r"[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.I | re.A)


def _request(query: bytes) -> Request:
    return Request({"type": "http", "query_string": query, "headers": []})


def _check_path(path: str) -> None:
    require(path.startswith("/") and "\x00" not in path, f"guest path {path!r}")
    again = guest_path(unquote_to_bytes(path_query(path)))
    require(again == path, f"path_query round trip {path!r} -> {again!r}")
    display(path).encode("utf-8")  # raises (a finding) if not printable UTF-8


def _oracle(header: str, size: int, got: ByteRange | None) -> None:
    m = _ORACLE.fullmatch(header)
    if got is None:
        return  # ignoring a Range is always allowed (RFC 9110 14.2)
    require(m is not None, f"range {header!r} accepted outside the grammar")
    assert m is not None
    first, last = m.groups()
    require(0 <= got.start < got.end <= size, f"range {got} outside a file of {size}")
    if first:
        require(got.start == int(first), f"{header!r} starts at {got.start}")
        want_end = size if not last else min(int(last) + 1, size)
        require(got.end == want_end, f"{header!r} ends at {got.end}, not {want_end}")
    else:
        require(got.end == size and got.start == max(0, size - int(last)), f"suffix {got}")


# pieces of Range headers, right and wrong: a regular expression is not instrumented, so
# the fuzzer would seldom build a header the parser accepts from bytes alone
_UNITS = ("bytes", "BYTES", "Bytes", "bits", "byte", "")
_SPACES = ("", " ", "\t", "  ", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\n", "\r\n")
_NUMBERS = ("", "0", "1", "007", "99", "18446744073709551616", "9" * 25, "-1", "+5", "1.0")


def _range_header(fdp: atheris.FuzzedDataProvider) -> str:
    if fdp.ConsumeBool():
        return str(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80)).decode("latin-1"))

    def pick(pool: tuple[str, ...]) -> str:
        index: int = fdp.ConsumeIntInRange(0, len(pool) - 1)
        return pool[index]

    def number() -> str:
        if fdp.ConsumeBool():
            return pick(_NUMBERS)
        return str(fdp.ConsumeIntInRange(0, 1 << 64))

    parts = [pick(_SPACES), pick(_UNITS), pick(_SPACES), "=", pick(_SPACES), number()]
    parts += [pick(_SPACES), "-", pick(_SPACES), number(), pick(_SPACES)]
    if fdp.ConsumeIntInRange(0, 7) == 0:
        parts += [",", number(), "-", number()]
    return "".join(parts)


def setup() -> OneInput:
    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        size = (
            fdp.ConsumeIntInRange(0, 1 << 64)
            if fdp.ConsumeBool()
            else fdp.ConsumeIntInRange(0, 100)
        )
        header = _range_header(fdp)
        name = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40))
        query = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 6000))
        for value in content_disposition(name), content_disposition(name + "\udce9"):
            require(value.isascii(), f"Content-Disposition {value!r} is not ASCII")
        try:
            got = parse_range(header, size)
        except RangeNotSatisfiableError as exc:
            require("\n" not in str(exc), "multi-line reason")
        else:
            _oracle(header, size, got)
        request = _request(query)
        with contextlib.suppress(PathRefusedError, InvalidParameterError):
            _check_path(request_path(request))
        with contextlib.suppress(PathRefusedError, InvalidParameterError):
            for path in request_paths(request):
                _check_path(path)

    return one


HARNESS = Harness(
    name="http",
    doc="http: the path query parameter resolver and the Range header parser",
    setup=setup,
    seeds=lambda: [
        b"\x01\x05bytes=0-99" + b"path=/a/b%2Fc&path=%C0%AE",
        b"\x00\x10bytes=-5" + b"path=/%FF%FE/..",
    ],
    expected=(PathRefusedError, InvalidParameterError, RangeNotSatisfiableError),
    timeout=5,
    rss_budget_mb=256,
    max_len=8192,
    dictionary=(b"bytes=", b"path=", b"%2F", b"%00", b"%C0%AE", b"%2E%2E", b"&", b"+", b"-"),
)
