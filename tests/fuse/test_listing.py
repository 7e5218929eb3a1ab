"""A directory streamed by position (the mounted listing of 10,000 entries is in
test_operations)."""

from __future__ import annotations

from collections.abc import Iterator

from filerestore.fs.entry import Entry, EntryKind
from filerestore.fuse.listing import DirStream, ListingCache, Row

NAMES = [f"f{i:04d}" for i in range(1000)]


class CountingListing:
    """A directory of 1,000 entries that counts how often it is listed and how far read."""

    def __init__(self) -> None:
        self.listed = 0
        self.built = 0

    def __call__(self) -> Iterator[Entry]:
        self.listed += 1
        for name in NAMES:
            self.built += 1
            yield Entry(name, f"/d/{name}", EntryKind.FILE, 0)


def test_sequential_requests_list_once() -> None:
    listing = CountingListing()
    stream = DirStream(listing)
    got: list[str] = []
    position = 0
    while batch := stream.take(position, 64):
        # the caller fits only part of each batch, as a full readdir buffer does
        used = batch[:25]
        stream.put_back(batch[25:])
        got += [e.name for e in used]
        position += len(used)
    assert got == NAMES
    assert listing.listed == 1
    assert listing.built == len(NAMES)


def test_another_position_starts_the_listing_again() -> None:
    listing = CountingListing()
    stream = DirStream(listing)
    assert [e.name for e in stream.take(0, 10)] == NAMES[:10]
    # a seek back (rewinddir, or telldir/seekdir) to position 3
    assert [e.name for e in stream.take(3, 5)] == NAMES[3:8]
    assert listing.listed == 2
    assert [e.name for e in stream.take(8, 2)] == NAMES[8:10]
    assert listing.listed == 2
    assert stream.take(1000, 5) == []


def rows(count: int) -> list[Row]:
    return [Row(b"n", None, i, f"/{i}", 0) for i in range(count)]


def test_listing_cache_keeps_whole_listings_within_its_bound() -> None:
    cache = ListingCache(max_rows=250)
    cache.put(10, rows(100))
    cache.put(11, rows(100))
    assert cache.get(10) is not None  # now the most recently used
    cache.put(12, rows(100))  # over the bound: the least recently used (11) goes
    assert cache.get(11) is None
    assert cache.get(10) is not None and cache.get(12) is not None
    cache.put(13, rows(251))  # larger than the whole cache: not kept, nothing dropped
    assert cache.get(13) is None and cache.get(10) is not None
