"""Browsing core against an ext4 image built from a source tree: every expected value comes
from the source tree (os.lstat, file bytes), never from our own reader."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from filerestore.errors import (
    InvalidCursorError,
    InvalidParameterError,
    IsADirectoryError_,
    NotADirectoryError_,
    PathNotFoundError,
    RangeNotSatisfiableError,
    StaleCursorError,
)
from filerestore.fs.entry import EntryKind
from filerestore.restore.browse import (
    SortKey,
    dir_totals,
    file_info,
    iter_file,
    list_page,
    open_file,
    read_range,
    walk,
    walk_page,
)
from tests.imagebuild.restore_tree import HOSTILE_FILES
from tests.imagebuild.tree import GiB, MiB
from tests.restore.conftest import archivable, listdir

LATIN1 = os.fsdecode(b"latin1-caf\xe9.txt")


def _all_pages(fs, path, limit, **kw):
    entries, cursor, pages = [], None, 0
    while True:
        page = list_page(fs, path, cursor=cursor, limit=limit, **kw)
        entries += page.entries
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            return entries, pages, page.total


def _tamper(cursor, **changes):
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    data.update(changes)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- paged listing ---------------------------------------------------------------------------


def test_pages_walk_10000_entries_without_gaps_or_duplicates(fs, source):
    expected = sorted(listdir(source.path("/many")))
    assert len(expected) == 10_000
    entries, pages, total = _all_pages(fs, "/many", 1000)
    names = [e.name for e in entries]
    assert pages == 10
    assert total == 10_000
    assert len(names) == len(set(names)) == 10_000
    assert names == expected  # ASCII names: casefold order is plain order here
    for e in entries[::997]:
        st = source.path(e.path).lstat()
        assert (e.kind, e.size, e.mode) == (EntryKind.FILE, st.st_size, st.st_mode)


def test_page_sizes_and_last_page(fs):
    entries, pages, _ = _all_pages(fs, "/many", 3333)
    assert pages == 4 and len(entries) == 10_000
    page = list_page(fs, "/many", limit=10_000)
    assert page.next_cursor is None and len(page.entries) == 10_000


def test_a_page_builds_only_its_own_entries(fs):
    # the first page fills the order cache; later pages must not build 10,000 Entry objects
    import tracemalloc

    first = list_page(fs, "/many", limit=100)
    tracemalloc.start()
    list_page(fs, "/many", cursor=first.next_cursor, limit=100)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 * MiB, peak  # 10,000 Entry objects would be several MiB


def test_cursor_is_stable_across_filesystem_handles(fs, source):
    from filerestore.blockio import FileReader
    from filerestore.fs import open_filesystem

    first = list_page(fs, "/many", limit=500)
    with FileReader(source.image) as reader:
        other = open_filesystem(reader)  # another handle: cold caches, as in another worker
        try:
            second = list_page(other, "/many", cursor=first.next_cursor, limit=500)
        finally:
            other.close()
    assert second.entries[0].name == sorted(listdir(source.path("/many")))[500]


def test_default_order_is_folders_first_then_casefolded_name(fs, source):
    top = source.path("/")
    src = {n: (top / n).lstat() for n in listdir(top)}
    dirs = sorted(
        (n for n, st in src.items() if stat.S_ISDIR(st.st_mode)), key=lambda n: (n.casefold(), n)
    )
    rest = sorted(
        (n for n, st in src.items() if not stat.S_ISDIR(st.st_mode)),
        key=lambda n: (n.casefold(), n),
    )
    names = [e.name for e in list_page(fs, "/").entries if e.name != "lost+found"]
    assert names == dirs + rest


@pytest.mark.parametrize("sort", ["size", "mtime"])
def test_sort_by_size_and_mtime(fs, source, sort):
    top = source.path("/docs")
    src = {n: (top / n).lstat() for n in listdir(top)}

    def value(st):
        if sort == "mtime":
            return st.st_mtime_ns // 10**9  # mke2fs -d keeps whole seconds
        return 0 if stat.S_ISDIR(st.st_mode) else st.st_size  # a directory's size is 0

    def key(n):
        return (value(src[n]), n.casefold(), n)

    for descending in (False, True):
        got = list_page(fs, "/docs", sort=sort, descending=descending, dirs_first=False)
        expected = sorted(src, key=key, reverse=descending)
        assert [e.name for e in got.entries] == expected
        got = list_page(fs, "/docs", sort=sort, descending=descending)
        dirs = [n for n in expected if stat.S_ISDIR(src[n].st_mode)]
        assert [e.name for e in got.entries] == dirs + [n for n in expected if n not in dirs]
        # sizes as the source has them (directories report 0)
        for e in got.entries:
            if e.kind is EntryKind.FILE:
                assert e.size == src[e.name].st_size


def test_sort_pages_through_the_same_order(fs):
    entries, _, _ = _all_pages(fs, "/", 4, sort=SortKey.SIZE, descending=True)
    sizes = [e.size for e in entries if e.kind is not EntryKind.DIR]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == 5 * GiB + 8192  # big-sparse.bin, from the tree recipe


def test_listing_follows_a_symlinked_directory(fs, source):
    got = [e.name for e in list_page(fs, "/link-to-dir", dirs_first=False).entries]
    assert sorted(got) == sorted(listdir(source.path("/docs")))


def test_hostile_names_are_listed_as_they_are(fs, source):
    got = {e.name for e in list_page(fs, "/hostile").entries}
    assert got == set(listdir(source.path("/hostile")))
    assert set(HOSTILE_FILES) <= got


@pytest.mark.parametrize(
    "cursor",
    ["", "!!!", "bm90IGpzb24", base64.urlsafe_b64encode(b'{"v": 9}').decode(), "A" * 600],
)
def test_malformed_cursor_is_refused(fs, cursor):
    with pytest.raises(InvalidCursorError):
        list_page(fs, "/many", cursor=cursor)


def test_cursor_of_another_listing_is_refused(fs):
    cursor = list_page(fs, "/many", limit=10).next_cursor
    with pytest.raises(InvalidCursorError) as info:
        list_page(fs, "/docs", cursor=cursor)
    assert not isinstance(info.value, StaleCursorError)
    with pytest.raises(InvalidCursorError):
        list_page(fs, "/many", cursor=cursor, sort="size")
    with pytest.raises(InvalidCursorError):
        walk_page(fs, "/many", cursor=cursor)


def test_changed_directory_gives_stale_cursor(fs):
    cursor = list_page(fs, "/many", limit=10).next_cursor
    with pytest.raises(StaleCursorError):
        list_page(fs, "/many", cursor=_tamper(cursor, d="0" * 16))
    with pytest.raises(StaleCursorError):
        list_page(fs, "/many", cursor=_tamper(cursor, i=10_001))
    with pytest.raises(StaleCursorError):
        list_page(fs, "/many", cursor=_tamper(cursor, n="0" * 16))
    with pytest.raises(InvalidCursorError):
        list_page(fs, "/many", cursor=_tamper(cursor, i=0))


@pytest.mark.parametrize("limit", [0, -1, 10_001])
def test_bad_limit(fs, limit):
    with pytest.raises(InvalidParameterError):
        list_page(fs, "/many", limit=limit)


def test_bad_sort_and_paths(fs):
    with pytest.raises(InvalidParameterError):
        list_page(fs, "/", sort="colour")
    with pytest.raises(NotADirectoryError_):
        list_page(fs, "/hello.txt")
    with pytest.raises(PathNotFoundError):
        list_page(fs, "/nope")


# --- walks -----------------------------------------------------------------------------------


def _source_walk(source, top, max_depth):
    """Relative paths below ``top`` down to ``max_depth`` levels, symlinks not followed."""
    base = source.path(top)
    out = set()
    for dirpath, dirnames, filenames in os.walk(base):
        rel = os.path.relpath(dirpath, base)
        depth = 0 if rel == "." else rel.count("/") + 1
        if depth >= max_depth:
            dirnames[:] = []
            continue
        for n in dirnames + filenames:
            out.add(n if rel == "." else f"{rel}/{n}")
    return out


@pytest.mark.parametrize("depth", [1, 2, 5, 19, 20, 22])
def test_walk_depth_limit(fs, source, depth):
    got = {e.path[len("/level00/") :] for e in walk(fs, "/level00", max_depth=depth)}
    assert got == _source_walk(source, "/level00", depth)
    bottom = "/".join(f"level{i:02d}" for i in range(1, 20)) + "/bottom.txt"  # 20 levels down
    assert (bottom in got) == (depth >= 20)


def test_walk_never_follows_symlinks(fs, source):
    got = {e.path.lstrip("/") for e in walk(fs, "/", max_depth=64)}
    got.discard("lost+found")
    assert got == _source_walk(source, "/", 64)
    assert not any(p.startswith(("link-to-dir/", "loop-a/")) for p in got)


@pytest.mark.parametrize("depth", [0, 257])
def test_walk_bad_depth(fs, depth):
    with pytest.raises(InvalidParameterError):
        list(walk(fs, "/", max_depth=depth))


def test_walk_pages_cover_the_tree(fs, source):
    seen, cursor, pages = [], None, 0
    while True:
        page = walk_page(fs, "/", cursor=cursor, limit=1000, max_depth=64)
        seen += [e.path.lstrip("/") for e in page.entries]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) - {"lost+found"} == _source_walk(source, "/", 64)
    assert pages == -(-len(seen) // 1000)


def test_walk_page_cursor_checks(fs):
    cursor = walk_page(fs, "/", limit=5, max_depth=2).next_cursor
    with pytest.raises(InvalidCursorError):
        walk_page(fs, "/", cursor=cursor, max_depth=3)
    with pytest.raises(StaleCursorError):
        walk_page(fs, "/", cursor=_tamper(cursor, n="0" * 16), max_depth=2)
    with pytest.raises(StaleCursorError):
        walk_page(fs, "/", cursor=_tamper(cursor, i=10**6), max_depth=2)


# --- file info and reads ---------------------------------------------------------------------


def test_file_info_of_symlink_and_target(fs, source):
    link = file_info(fs, "/link-relative")
    assert link.kind is EntryKind.SYMLINK
    assert link.target == str(source.path("/link-relative").readlink())
    target = file_info(fs, "/link-relative", follow_symlinks=True)
    st = source.path("/docs/readme.md").stat()
    assert (target.kind, target.size, target.mode, target.path) == (
        EntryKind.FILE,
        st.st_size,
        st.st_mode,
        "/docs/readme.md",
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, 1),
        (4095, 4097),
        (MiB - 3, 2 * MiB + 5),
        (3 * MiB + 100, 3 * MiB + 123),
        (5, 5),
    ],
)
def test_read_range_matches_source(fs, source, start, end):
    data = source.path("/docs/data.bin").read_bytes()
    got = b"".join(read_range(fs, "/docs/data.bin", start, end))
    assert got == data[start:end]


def test_chunks_are_one_mib(fs):
    sizes = [len(c) for c in read_range(fs, "/docs/data.bin", 1)]
    assert sizes[:-1] == [MiB] * 3 and sum(sizes) == 3 * MiB + 122


def test_sparse_reads(fs, source):
    assert b"".join(iter_file(fs, "/sparse.bin")) == source.path("/sparse.bin").read_bytes()
    big = open_file(fs, "/big-sparse.bin")
    assert big.size == source.path("/big-sparse.bin").stat().st_size
    with source.path("/big-sparse.bin").open("rb") as fh:
        fh.seek(5 * GiB - 10)
        tail = fh.read()
    assert b"".join(big.read_range(5 * GiB - 10)) == tail
    assert b"".join(big.read_range(0, 8)) == b"start\0\0\0"


def test_non_utf8_name_read_by_listed_path(fs, source):
    entry = next(e for e in list_page(fs, "/unicode").entries if e.name == LATIN1)
    assert b"".join(iter_file(fs, entry.path)) == source.path(f"/unicode/{LATIN1}").read_bytes()


@pytest.mark.parametrize(("start", "end"), [(-1, 10), (10, 5), (0, 13 + 1), (14, None)])
def test_unsatisfiable_range(fs, start, end):
    with pytest.raises(RangeNotSatisfiableError):
        read_range(fs, "/hello.txt", start, end)


def test_read_errors_before_first_chunk(fs):
    with pytest.raises(IsADirectoryError_):
        read_range(fs, "/docs")
    with pytest.raises(PathNotFoundError):
        read_range(fs, "/link-dangling")


# --- totals ------------------------------------------------------------------------------


def _source_totals(source, paths):
    files = dirs = links = size = 0
    for p in paths:
        top = source.path(p)
        items = [top.lstat()] + [st for st in source.entries(p).values()]
        for st in items:
            if not archivable(st):
                continue
            files += stat.S_ISREG(st.st_mode)
            dirs += stat.S_ISDIR(st.st_mode)
            links += stat.S_ISLNK(st.st_mode)
            size += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return files, dirs, links, size


def test_dir_totals_match_source(fs, source):
    paths = ["/docs", "/hostile", "/unicode", "/hello.txt"]
    t = dir_totals(fs, paths)
    assert (t.files, t.dirs, t.symlinks, t.bytes) == _source_totals(source, paths)
    assert t.complete and t.skipped == 1  # the FIFO


def test_dir_totals_cap(fs):
    t = dir_totals(fs, ["/many"], cap=100)
    assert not t.complete and t.entries == 100
    with pytest.raises(InvalidParameterError):
        dir_totals(fs, ["/"], cap=0)
