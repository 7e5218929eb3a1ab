"""A page in name order is sorted from names and kinds alone (``sort_names``): the same order
:func:`sort_entries` gives the entries, checked on generated directories whose names differ
only in case, fold to the same (ß and ss, the ﬁ ligature), or are equal once folded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from filerestore.fs.entry import Entry, EntryKind
from filerestore.restore.listing_order import SortKey, sort_entries, sort_names

LETTERS = ["a", "A", "b", "B", "ß", "ss", "SS", "é", "É", "e", "_", "1", "İ", "i̇", "ﬁ", "fi"]
names = st.lists(
    st.lists(st.sampled_from(LETTERS), min_size=1, max_size=4).map("".join), unique=True
)


@settings(max_examples=400, deadline=None)
@given(names=names, data=st.data(), descending=st.booleans(), dirs_first=st.booleans())
def test_sort_names_is_the_order_of_sort_entries(
    names: list[str], data: st.DataObject, descending: bool, dirs_first: bool
) -> None:
    kinds = data.draw(st.lists(st.booleans(), min_size=len(names), max_size=len(names)))
    entries = [
        Entry(n, f"/{n}", EntryKind.DIR if is_dir else EntryKind.FILE, 0)
        for n, is_dir in zip(names, kinds, strict=True)
    ]
    want = [e.name for e in sort_entries(entries, SortKey.NAME, descending, dirs_first)]
    assert sort_names(zip(names, kinds, strict=True), descending, dirs_first) == want


def test_folded_ties_go_by_the_exact_name() -> None:
    named = [("b", False), ("B", False), ("a", True), ("A", False), ("ss", False), ("ß", False)]
    assert sort_names(named) == ["a", "A", "B", "b", "ss", "ß"]
    assert sort_names(named, descending=True) == ["a", "ß", "ss", "b", "B", "A"]
