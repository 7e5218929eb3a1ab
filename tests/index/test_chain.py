"""A chain of three backups with known changes (made through kernel mounts), indexed on SQLite
and PostgreSQL: every backup's entries, the diffs and the histories must be what the kernel
saw in each state and what the recipe did, never what our reader says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from filerestore.fs.entry import EntryKind
from filerestore.index.diff import BackupDiff
from filerestore.index.history import path_history
from filerestore.index.records import Version
from filerestore.index.search import SearchQuery, search
from tests.imagebuild.index_chain import LATIN1, TOUCHED, diff_r
from tests.index.conftest import Chain, chain_of
from tests.index.kernel_diff import kernel_diff

KINDS = ("ext4", "xfs", "btrfs")
DIALECTS = ("sqlite", "postgresql")
#: what the kernel confirms about every entry, as the index stores it
FIELDS = ("kind", "mode", "uid", "gid", "mtime_ns", "ctime_ns", "inode", "nlink", "target")


@pytest.fixture(scope="module", params=[(k, d) for k in KINDS for d in DIALECTS], ids="-".join)
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    yield from chain_of(request, tmp_path_factory)


def everything(chain: Chain, backup_id: int) -> dict[str, Version]:
    """Every entry the index holds for one backup, read through paged searches."""
    out: dict[str, Version] = {}
    cursor = None
    while True:
        page = search(
            chain.db,
            SearchQuery(backup_ids=[backup_id], limit=97, cursor=cursor),
            allowed=set(chain.ids),
        )
        for hit in page.hits:
            assert hit.path not in out, hit.path
            assert len(hit.versions) == 1, hit.path
            out[hit.path] = hit.versions[0]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def _ours(v: Version, field: str) -> Any:
    return str(v.kind) if field == "kind" else getattr(v, field)


def _kernel_paths(facts: dict[str, dict[str, Any]]) -> set[str]:
    return set(facts)


def _index_paths(state: dict[str, Version]) -> set[str]:
    return {p for p in state if p != "/lost+found" and not p.startswith("/lost+found/")}


def state_problems(chain: Chain, fields: tuple[str, ...]) -> list[str]:
    """Where each backup's entries in the index differ from what the mount saw in that state
    (the paths, ``fields``, and the size of files and symlinks)."""
    problems = []
    for i, backup_id in enumerate(chain.ids):
        facts = chain.facts(i)
        state = everything(chain, backup_id)
        assert _index_paths(state) == _kernel_paths(facts)
        for path, fact in facts.items():
            v = state[path]
            for field in fields:
                if _ours(v, field) != fact[field]:
                    problems.append(f"{i} {path}: {field} {_ours(v, field)!r} != {fact[field]!r}")
            if fact["kind"] in ("file", "symlink") and v.size != fact["size"]:
                problems.append(f"{i} {path}: size {v.size} != {fact['size']}")
            assert all(b.backup_id == backup_id for b in v.backups)
    return problems


def test_every_backup_holds_what_the_kernel_saw(chain: Chain) -> None:
    assert state_problems(chain, FIELDS) == []


@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, 2), (0, 2), (2, 0)])
def test_diff_is_the_difference_of_the_kernel_states(chain: Chain, a: int, b: int) -> None:
    diff = BackupDiff(chain.db, chain.ids[a], chain.ids[b], set(chain.ids))
    got = {(e.change, e.path) for e in diff if not e.path.startswith("/lost+found")}
    want = kernel_diff(chain.dir, b, a) if a > b else kernel_diff(chain.dir, a, b)
    if a > b:  # from the newer to the older: what was added is removed
        flip = {"added": "removed", "removed": "added", "changed": "changed"}
        want = {(flip[c], p) for c, p in want}
    assert got == want
    totals = diff.totals
    assert (totals.added, totals.removed, totals.changed) == tuple(
        sum(1 for c, _ in want if c == k) for k in ("added", "removed", "changed")
    )


def _from_diff_r(lines: list[str]) -> set[tuple[str, str]]:
    """diff -rq's report as (what, path): only-in tops, differing files, type changes."""
    out = set()
    for line in lines:
        if m := re.fullmatch(r"Only in ([AB])(/.*)?: (.*)", line):
            where, parent, name = m.groups()
            out.add(("removed" if where == "A" else "added", f"{parent or ''}/{name}"))
        elif m := re.fullmatch(r"(?:Files|Symbolic links) A(/.*) and B/.* differ", line):
            out.add(("content", m.group(1)))
        elif m := re.fullmatch(r"File A(/.*) is a .* while file B/.* is a .*", line):
            out.add(("type", m.group(1)))
        else:
            raise AssertionError(f"unexpected diff -r line: {line}")
    return out


@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, 2), (0, 2)])
def test_diff_with_contents_agrees_with_diff_r(chain: Chain, a: int, b: int) -> None:
    entries = list(BackupDiff(chain.db, chain.ids[a], chain.ids[b], set(chain.ids), content=True))
    entries = [e for e in entries if not e.path.startswith("/lost+found")]
    retyped = {e.path for e in entries if e.change == "changed" and "kind" in e.fields}
    added = {e.path for e in entries if e.change == "added"}
    removed = {e.path for e in entries if e.change == "removed"}
    # diff -r names the top of what is only on one side, and does not descend into a path
    # whose type changed
    ours = {("added", p) for p in added if p.rsplit("/", 1)[0] not in added | retyped}
    ours |= {("removed", p) for p in removed if p.rsplit("/", 1)[0] not in removed | retyped}
    for e in entries:
        if e.change != "changed":
            continue
        if "kind" in e.fields:
            ours.add(("type", e.path))
        elif e.content_changed or "target" in e.fields:
            ours.add(("content", e.path))
        if e.new is not None and e.new.kind is EntryKind.FILE:
            assert e.content_changed is not None, e.path
    assert ours == _from_diff_r(diff_r(chain.dir, a, b))


def test_diff_of_one_directory(chain: Chain) -> None:
    got = {
        (e.change, e.path)
        for e in BackupDiff(chain.db, chain.ids[0], chain.ids[2], set(chain.ids), path="/photos")
    }
    want = {(c, p) for c, p in kernel_diff(chain.dir, 0, 2) if p.startswith("/photos/")}
    assert got == want
    assert ("added", "/photos/copy.jpg") in got  # a hard link made in step 1


def _events(chain: Chain, path: str) -> list[tuple[str, int]]:
    h = path_history(chain.db, chain.ids[2], path, set(chain.ids))
    names = {bid: i for i, bid in enumerate(chain.ids)}
    return [(e.event, names[e.backup.backup_id]) for e in h.events]


def test_histories_follow_the_recipe(chain: Chain) -> None:
    assert _events(chain, "/docs/readme.md") == [("appeared", 0), ("changed", 1)]
    assert _events(chain, "/docs/report-2024.xlsx") == [("appeared", 0), ("vanished", 1)]
    assert _events(chain, "/photos/img_0005.jpg") == [
        ("appeared", 0),
        ("vanished", 1),
        ("appeared", 2),
    ]
    assert _events(chain, "/empty.txt") == [("appeared", 0), ("changed", 2)]
    assert _events(chain, "/projects/beta/main.c") == [("appeared", 0), ("vanished", 1)]
    assert _events(chain, "/docs/old/beta/main.c") == [("appeared", 1), ("vanished", 2)]
    assert _events(chain, "/never/there") == []
    h = path_history(chain.db, chain.ids[0], "/photos/img_0002.jpg", set(chain.ids))
    assert [v.mtime_ns for v in h.versions] == [
        chain.facts(0)["/photos/img_0002.jpg"]["mtime_ns"],
        TOUCHED * 10**9,
    ]
    assert h.last_seen is not None and h.last_seen.backup_id == chain.ids[2]
    gone = path_history(chain.db, chain.ids[2], "/docs/report-2024.xlsx", set(chain.ids))
    assert gone.last_seen is not None and gone.last_seen.backup_id == chain.ids[0]
    assert [v.size for v in gone.versions] == [3000]
    kinds = path_history(chain.db, chain.ids[2], "/empty.txt", set(chain.ids))
    assert [v.kind for v in kinds.versions] == [EntryKind.FILE, EntryKind.DIR]


def test_history_sees_only_allowed_backups(chain: Chain) -> None:
    h = path_history(chain.db, chain.ids[1], "/photos/img_0005.jpg", {chain.ids[1], chain.ids[2]})
    assert [e.event for e in h.events] == ["appeared"]
    assert [b.backup_id for v in h.versions for b in v.backups] == [chain.ids[2]]


def _hits(chain: Chain, allowed: set[int] | None = None, **query: Any) -> dict[str, list[int]]:
    """path -> backups holding it (sorted), over every page."""
    out: dict[str, list[int]] = {}
    cursor = None
    while True:
        page = search(
            chain.db,
            SearchQuery(limit=7, cursor=cursor, **query),
            set(chain.ids) if allowed is None else allowed,
        )
        for hit in page.hits:
            out[hit.path] = sorted(b.backup_id for v in hit.versions for b in v.backups)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def test_search_by_name_across_backups(chain: Chain) -> None:
    b0, b1, b2 = chain.ids
    want = {
        "/docs/report-2024.xlsx": [b0],
        "/docs/report-2024-final.xlsx": [b1, b2],
        "/docs/report-2025.xlsx": [b1, b2],
    }
    assert _hits(chain, name="report") == want
    assert _hits(chain, name="REPORT-20") == want  # case-insensitive
    assert _hits(chain, glob="report-20??.XLSX") == {
        "/docs/report-2024.xlsx": [b0],
        "/docs/report-2025.xlsx": [b1, b2],
    }
    assert _hits(chain, glob="img_000[1-3].jpg") == {
        f"/photos/img_000{i}.jpg": [b0, b1, b2] for i in (1, 2, 3)
    }
    assert _hits(chain, name=LATIN1[:3] + "\udce9") == {f"/unicode/{LATIN1}": [b0, b1, b2]}
    assert _hits(chain, name="résumé") == {"/unicode/Résumé.PDF": [b0, b1, b2]}
    assert _hits(chain, name="main.c", path_prefix="/projects") == {
        "/projects/alpha/main.c": [b0, b1],
        "/projects/beta/main.c": [b0],
        "/projects/alpha2/main.c": [b2],
    }


def test_search_filters(chain: Chain) -> None:
    b0, b1, b2 = chain.ids
    assert _hits(chain, name="img_", size_min=1019, size_max=1020) == {
        "/photos/img_0019.jpg": [b0, b1, b2],
        "/photos/img_0020.jpg": [b0, b1, b2],
    }
    assert _hits(chain, name="empty", kind=EntryKind.DIR) == {"/empty.txt": [b2]}
    assert _hits(chain, name="report", backup_ids=[b1]) == {
        "/docs/report-2024-final.xlsx": [b1],
        "/docs/report-2025.xlsx": [b1],
    }
    assert _hits(chain, name="report", allowed={b0}) == {"/docs/report-2024.xlsx": [b0]}
    from datetime import UTC, datetime

    touched = datetime.fromtimestamp(TOUCHED, UTC)
    assert _hits(chain, glob="img_*", mtime_from=touched) == {"/photos/img_0002.jpg": [b2]}
    assert _hits(chain, name="nothing-like-this") == {}
    # "_" and "%" in a name are themselves, not LIKE wildcards ("f0_0" would match f0100.txt)
    assert _hits(chain, name="f0_0") == {}
    assert _hits(chain, name="f01%") == {}
    assert _hits(chain, name="img_0019") == {"/photos/img_0019.jpg": [b0, b1, b2]}
    assert _hits(chain, name="report", allowed=set()) == {}


def test_search_pages_do_not_overlap(chain: Chain) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = search(chain.db, SearchQuery(name="f0", limit=13, cursor=cursor), set(chain.ids))
        seen += [h.path for h in page.hits]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 301  # f0000..f0300
