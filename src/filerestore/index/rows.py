"""An Entry as the stored fields of a version, and back: the one place that knows the columns.

``Meta`` is a version's fields in column order after its key (volume, path, first_seq,
last_seq). Times other than mtime are stored as differences from it (see db/models_index.py).
Two versions are the same when every field but the access time is equal: reading a file is
not a change, and counting it as one would make an incremental of a busy disk cost a row for
every file read since the last backup.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from filerestore.fs.entry import Entry, EntryKind
from filerestore.index.text import to_db

KIND_CODES: dict[EntryKind, int] = {
    EntryKind.FILE: 1,
    EntryKind.DIR: 2,
    EntryKind.SYMLINK: 3,
    EntryKind.OTHER: 4,
}
KINDS: dict[int, EntryKind] = {code: kind for kind, code in KIND_CODES.items()}
_CODES = KIND_CODES
DIR_CODE = KIND_CODES[EntryKind.DIR]
#: the stored columns, in order, after (volume_id, path_no, first_seq, last_seq)
META_COLUMNS = (
    "kind",
    "size",
    "mode",
    "uid",
    "gid",
    "mtime_ns",
    "ctime_delta",
    "atime_delta",
    "btime_delta",
    "inode",
    "nlink",
    "target",
    "data_location",
)
ATIME = META_COLUMNS.index("atime_delta")
#: a plain version's fields: META_COLUMNS before its symlink target and data location (the
#: last two), which a plain version has none of (see IndexStore.insert_versions)
PLAIN = META_COLUMNS.index("target")


class Meta(NamedTuple):
    kind: int
    size: int
    mode: int | None
    uid: int | None
    gid: int | None
    mtime_ns: int | None
    ctime_delta: int | None
    atime_delta: int | None
    btime_delta: int | None
    inode: int | None
    nlink: int | None
    target: str | None
    data_location: str | None


def meta_of(e: Entry) -> tuple[Any, ...]:
    """The stored fields of an entry (a plain tuple: one is built per indexed entry)."""
    base = e.mtime_ns or 0
    c, a, b = e.ctime_ns, e.atime_ns, e.btime_ns
    return (
        _CODES[e.kind],
        e.size,
        e.mode,
        e.uid,
        e.gid,
        e.mtime_ns,
        None if c is None else c - base,
        None if a is None else a - base,
        None if b is None else b - base,
        e.inode,
        e.nlink,
        None if e.target is None else to_db(e.target),
        e.data_location,
    )


def identity(m: tuple[object, ...]) -> tuple[object, ...]:
    """What makes a version differ from another (everything but the access time)."""
    return m[:ATIME] + m[ATIME + 1 :]


def same_version(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return identity(a) == identity(b)


def times_of(m: Meta) -> tuple[int | None, int | None, int | None, int | None]:
    """(mtime, ctime, atime, btime) in ns since the epoch, from the stored differences."""
    base = m.mtime_ns or 0
    return (
        m.mtime_ns,
        None if m.ctime_delta is None else base + m.ctime_delta,
        None if m.atime_delta is None else base + m.atime_delta,
        None if m.btime_delta is None else base + m.btime_delta,
    )


def is_dir(m: tuple[object, ...]) -> bool:
    return m[0] == DIR_CODE
