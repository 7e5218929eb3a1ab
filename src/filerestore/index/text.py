"""Guest names and link targets as database text, reversibly.

An Entry carries a name that is not valid UTF-8 with surrogate escapes (``os.fsdecode``
style); neither SQLite nor PostgreSQL text can hold a lone surrogate. Such a name is stored
with each escaped byte written as U+FFFF and two hex digits, and a U+FFFF of the name itself
doubled (a noncharacter, so real names almost never pay for it). Every other name is stored
as it is, so a search for any part of a valid name matches its stored text.
"""

from __future__ import annotations

import hashlib
import re

ESCAPE = "\uffff"
_STORED_BYTE = re.compile(f"{ESCAPE}({ESCAPE}|[0-9a-f]{{2}})")


def to_db(name: str) -> str:
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        if ESCAPE not in name:
            return name
    out = []
    for ch in name:
        if ch == ESCAPE:
            out.append(ESCAPE * 2)
        elif "\udc80" <= ch <= "\udcff":
            out.append(f"{ESCAPE}{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out)


def from_db(stored: str) -> str:
    if ESCAPE not in stored:
        return stored

    def byte(m: re.Match[str]) -> str:
        code = m.group(1)
        return ESCAPE if code == ESCAPE else chr(0xDC00 + int(code, 16))

    return _STORED_BYTE.sub(byte, stored)


def name_id(stored: str) -> int:
    """The id of a stored name: its BLAKE2b hash as a signed 64-bit integer (63 bits)."""
    digest = hashlib.blake2b(stored.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) >> 1
