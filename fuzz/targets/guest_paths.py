"""Guest path harness: the resolver of fs/base.py on fuzzed trees, and restore/names.py.

The input builds a small in-memory filesystem through :class:`~filerestore.fs.base.Filesystem`
itself: directories, files, symlinks and devices whose names and link targets come from a
pool of the awkward ones (``..``, ``.``, empty, ``a/b``, NUL, undecodable bytes, backslashes)
and from the input; a node may be linked into several directories, so directory loops and
hard-linked directories happen. A corrupt image can claim any of these; the base class must
cope. Then requests with fuzzed paths: ``stat`` (following or not), ``list_dir``, ``open``,
``read_link`` and ``walk``.

Half of the inputs also extract the tree with the CLI's ``get`` (:mod:`filerestore.restore.extract`)
into an empty directory on tmpfs: only refusals come out, and nothing is written beside it.

Checked: only the resolver's own refusals come out; a resolved path is absolute and holds no
empty, ``.`` or ``..`` component; ``walk`` ends, and every entry it yields whose path is made
of plain names resolves back to the same node; each name becomes a clean archive component
(:mod:`filerestore.restore.names`): never empty, ``.`` or ``..``, no ``/`` or NUL, ZIP names
valid UTF-8 without a backslash, and ``unique`` never hands out one name twice.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Hashable, Iterator
from itertools import islice
from pathlib import Path

import atheris

from filerestore.blockio import BytesReader
from filerestore.errors import DestinationEscapeError, DestinationExistsError, FilesystemError
from filerestore.fs.base import RESOLVER_ERRORS, Filesystem
from filerestore.fs.contents import FileContents, whole_file
from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.extract import extract
from filerestore.restore.names import clean_component, tar_component, unique, zip_component
from fuzz.harness import Finding, Harness, OneInput, require

NAMES = (
    "a", "b", "..", ".", "", "a/b", "n\x00ul", "caf\udce9", "..a", " ", "\\", "..\\x",
    "%2F", "%2E%2E", "a.txt", "ü", "\udcff\udcfe", "CON", "/",
)  # fmt: skip
TARGETS = ("/", "..", "../..", "a", "/a/b", "a/../b", "", "loop", "x\x00y", ".", "b/", "//a")
KINDS = (EntryKind.DIR, EntryKind.FILE, EntryKind.SYMLINK, EntryKind.OTHER)
MAX_NODES = 14


class Node:
    __slots__ = ("children", "index", "kind", "target")

    def __init__(self, index: int, kind: EntryKind, target: str) -> None:
        self.index = index
        self.kind = kind
        self.target = target
        self.children: list[tuple[str, Node]] = []


class FuzzedFilesystem(Filesystem[Node]):
    """A filesystem whose nodes and names come from the fuzz input (see module docstring)."""

    kind = "fuzzed"

    def __init__(self, root: Node) -> None:
        super().__init__()
        self._root_node = root

    def _root(self) -> Node:
        return self._root_node

    def _children(self, node: Node) -> Iterator[tuple[str, Node]]:
        return iter(node.children)

    def _kind(self, node: Node) -> EntryKind:
        return node.kind

    def _key(self, node: Node) -> Hashable:
        return node.index

    def _entry(self, name: str, path: str, node: Node) -> Entry:
        target = node.target if node.kind is EntryKind.SYMLINK else None
        return Entry(name, path, node.kind, node.index, inode=node.index, target=target)

    def _link_target(self, node: Node) -> str:
        return node.target

    def _open(self, node: Node) -> FileContents:
        return _Contents(bytes(node.index))


class _Contents(BytesReader):
    """A fuzzed file's bytes; all data, no holes."""

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        return whole_file(self.size)


def _text(fdp: atheris.FuzzedDataProvider, pool: tuple[str, ...]) -> str:
    choice: int = fdp.ConsumeIntInRange(0, len(pool))
    if choice == len(pool):
        return str(fdp.ConsumeUnicode(6))
    return pool[choice]


def build_tree(fdp: atheris.FuzzedDataProvider) -> FuzzedFilesystem:
    nodes = [Node(0, EntryKind.DIR, "")]
    for i in range(1, fdp.ConsumeIntInRange(1, MAX_NODES)):
        kind = KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)]
        target = _text(fdp, TARGETS) if kind is EntryKind.SYMLINK else ""
        node = Node(i, kind, target)
        dirs = [n for n in nodes if n.kind is EntryKind.DIR]
        dirs[fdp.ConsumeIntInRange(0, len(dirs) - 1)].children.append((_text(fdp, NAMES), node))
        nodes.append(node)
    dirs = [n for n in nodes if n.kind is EntryKind.DIR]
    for _ in range(fdp.ConsumeIntInRange(0, 3)):  # extra links: loops, hard-linked dirs
        node = nodes[fdp.ConsumeIntInRange(0, len(nodes) - 1)]
        dirs[fdp.ConsumeIntInRange(0, len(dirs) - 1)].children.append((_text(fdp, NAMES), node))
    return FuzzedFilesystem(nodes[0])


def _request(fdp: atheris.FuzzedDataProvider) -> str:
    parts = [_text(fdp, (*NAMES, *TARGETS)) for _ in range(fdp.ConsumeIntInRange(0, 5))]
    return ("/" if fdp.ConsumeBool() else "") + "/".join(parts)


def _plain(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


def _check_resolved(path: str) -> None:
    require(path.startswith("/"), f"resolved path {path!r} is relative")
    if path != "/":
        parts = path.split("/")[1:]
        require(all(p not in ("", ".", "..") for p in parts), f"resolved path {path!r}")


def _operate(fs: FuzzedFilesystem, fdp: atheris.FuzzedDataProvider) -> None:
    path = _request(fdp)
    op = fdp.ConsumeIntInRange(0, 4)
    if op == 0:
        _check_resolved(fs.stat(path, follow_symlinks=fdp.ConsumeBool()).path)
    elif op == 1:
        for entry in islice(fs.list_dir(path), 100):
            require(entry.path.startswith("/"), f"listed path {entry.path!r}")
    elif op == 2:
        reader = fs.open(path)
        require(len(reader.read_at(0, 64)) == min(64, reader.size), "short read")
    elif op == 3:
        fs.read_link(path)
    else:
        walked = list(islice(fs.walk(path, max_depth=fdp.ConsumeIntInRange(1, 6)), 2000))
        require(len(walked) < 2000, "walk does not end")


def _check_walk_and_names(fs: FuzzedFilesystem) -> None:
    taken: set[str] = set()
    given: list[str] = []
    plain_dirs = {""}  # walked paths made of plain names only (the root's is "")
    walked = list(islice(fs.walk("/"), 2000))
    # two entries can share one path text (a name "a/b" in / and a name "b" in /a): such a
    # path names neither unambiguously, so it is not checked nor used as a plain parent
    counts = Counter(entry.path for entry in walked)
    for entry in walked:
        parent = entry.path[: len(entry.path) - len(entry.name) - 1]
        if parent in plain_dirs and _plain(entry.name) and counts[entry.path] == 1:
            if entry.kind is EntryKind.DIR:
                plain_dirs.add(entry.path)
            try:
                again = fs.stat(entry.path)
            except RESOLVER_ERRORS as exc:
                raise Finding(f"walked entry {entry.path!r} does not resolve: {exc}") from exc
            require(again.inode == entry.inode, f"{entry.path!r} resolves to another node")
        for make in (clean_component, tar_component, zip_component):
            name = make(entry.name)
            require(name not in ("", ".", ".."), f"{make.__name__}({entry.name!r}) = {name!r}")
            require("/" not in name and "\x00" not in name, f"{make.__name__} kept / or NUL")
        zipped = zip_component(entry.name)
        require("\\" not in zipped, f"zip name {zipped!r} holds a backslash")
        zipped.encode("utf-8")  # raises (a finding) if a surrogate is left
        given.append(unique(clean_component(entry.name), taken, entry.kind is EntryKind.DIR))
    require(len(set(given)) == len(given), "unique() gave one name twice")


def _check_extract(fs: FuzzedFilesystem, where: Path) -> None:
    """``get /`` into an empty directory: only refusals, and nothing lands outside it."""
    dest = where / "dest"
    try:
        result = extract(fs, "/", dest)
        # an entry that cannot be written is skipped with a one-line reason, never a crash
        for failure in result.failed:
            reason = failure.reason
            require("\n" not in reason and bool(reason.strip()), f"skip reason {reason!r}")
    except EXTRACT_ERRORS as exc:
        require("\n" not in str(exc) and bool(str(exc).strip()), f"reason {exc!r}")
    finally:
        outside = [p for p in where.iterdir() if p.name != "dest"]
        require(not outside, f"extraction wrote outside its destination: {outside}")
        shutil.rmtree(dest, ignore_errors=True)


def setup() -> OneInput:
    where = Path(tempfile.mkdtemp(prefix="fr-fuzz-extract-", dir=_TMPFS))

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        fs = build_tree(fdp)
        _check_walk_and_names(fs)
        if fdp.ConsumeBool():
            _check_extract(fs, where)
        for _ in range(fdp.ConsumeIntInRange(1, 6)):
            try:
                _operate(fs, fdp)
            except RESOLVER_ERRORS as exc:
                require("\n" not in str(exc) and bool(str(exc).strip()), f"reason {exc!r}")

    return one


_TMPFS = "/dev/shm" if Path("/dev/shm").is_dir() else None
EXTRACT_ERRORS = (FilesystemError, DestinationEscapeError, DestinationExistsError)

HARNESS = Harness(
    name="guest_paths",
    doc="guest_paths: the fs/base.py resolver and restore/names.py on fuzzed trees",
    setup=setup,
    seeds=lambda: [bytes(range(i, i + 64)) for i in range(0, 192, 32)],
    expected=RESOLVER_ERRORS + EXTRACT_ERRORS,
    timeout=5,
    rss_budget_mb=256,
    max_len=1024,
)
