"""What a pass writes for one volume: new directories, new versions, ended versions.

An entry is known by its directory's number and its name id. Directory numbers are the
volume's own, given in order from where its last completed pass stopped
(``index_volumes.next_dir_no``); the root is always directory 1, its own parent, named "",
and its own versions sit under parent 0. A version that begins here has ``first_seq`` = this
pass's seq; one that ends here gets ``last_seq`` = seq - 1, the last backup that held it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from filerestore.errors import FileRestoreError
from filerestore.fs import Filesystem
from filerestore.fs.entry import Entry, EntryKind
from filerestore.index.batch import BatchWriter
from filerestore.index.rows import PLAIN, meta_of

ROOT_DIR_NO = 1
ROOT_PARENT = 0  # the parent_no of the root's own versions
HASH_PIECE = 1 << 20

#: the content hash of an entry, or None when it is not computed (see content_hasher)
Hasher = Callable[[Entry], bytes | None]


def content_hash(fs: Filesystem[object], path: str) -> bytes:
    """BLAKE2b-128 of a file's contents, read through the filesystem."""
    reader = fs.open(path)
    digest = hashlib.blake2b(digest_size=16)
    for offset in range(0, reader.size, HASH_PIECE):
        digest.update(reader.read_at(offset, HASH_PIECE))
    return digest.digest()


def content_hasher(fs: Filesystem[object], max_size: int) -> Hasher | None:
    """A hasher of regular files of at most ``max_size`` bytes (None: hash nothing). A file
    that cannot be read (its data kept elsewhere, a damaged extent) gets no hash."""
    if max_size <= 0:
        return None

    def hasher(e: Entry) -> bytes | None:
        if e.kind is not EntryKind.FILE or e.size > max_size or e.data_location is not None:
            return None
        try:
            return content_hash(fs, e.path)
        except FileRestoreError:
            return None

    return hasher


@dataclass(eq=False)
class VolumeWriter:
    writer: BatchWriter
    volume_id: int
    seq: int
    next_dir_no: int
    hasher: Hasher | None = None

    def __post_init__(self) -> None:
        #: BatchWriter.add_version's keys of this volume's new versions: full, plain rows
        self._keys = ((self.volume_id, self.seq, False), (self.volume_id, self.seq, True))

    def new_dir(self, parent_no: int, name_id: int) -> int:
        no = self.next_dir_no
        self.next_dir_no = no + 1
        self.writer.add_dir((self.volume_id, no, parent_no, name_id))
        return no

    def add(self, parent_no: int, name_id: int, entry: Entry) -> None:
        digest = self.hasher(entry) if self.hasher is not None else None
        meta = meta_of(entry)
        if digest is None and meta[-1] is None and meta[-2] is None:  # none past PLAIN
            self.writer.add_version(self._keys[1], (parent_no, name_id, *meta[:PLAIN]))
        else:
            self.writer.add_version(self._keys[0], (parent_no, name_id, *meta, digest))

    def end(self, parent_no: int, name_id: int) -> None:
        self.writer.close(self.volume_id, (parent_no, name_id), self.seq - 1)

    def root_name_id(self) -> int:
        return self.writer.store.name_ids([""])[""]

    def add_root(self, entry: Entry) -> int:
        """The root directory's row and version, in a volume's first pass."""
        name_id = self.root_name_id()
        no = self.next_dir_no
        if no != ROOT_DIR_NO:
            raise AssertionError(f"a volume's root must be directory {ROOT_DIR_NO}, not {no}")
        self.next_dir_no = no + 1
        self.writer.add_dir((self.volume_id, no, no, name_id))
        self.add(ROOT_PARENT, name_id, entry)
        return no
