"""LVM2 metadata texts that the tests parse and bench/parse_times.py times."""

from __future__ import annotations

#: (text, what the refusal says): malformed metadata, some of it huge
SYNTAX_ERRORS: list[tuple[str, str]] = [
    ("vg { a = }", "expected a value"),
    ("vg { a = [1, { ] }", "unexpected '{' in an array"),
    ("vg { a }", "expected '=' or '{'"),
    ("vg { = 3 }", "expected a name"),
    ("}", "expected a name"),
    ("vg {", "not closed"),
    ("vg { a = [1, 2", "unexpected end"),
    ('vg { a = "x', "unexpected character"),
    ("[" * 100_000, "expected a name"),
    ("a {" * 100_000, "nests too deep"),
]


def large_metadata(volumes: int) -> str:
    """Metadata text with ``volumes`` logical volumes (bench/parse_times.py times it too)."""
    lv = (
        'lv{n} {{ id = "x" status = ["READ", "VISIBLE"] segment1 {{ start_extent = 0 '
        'extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", {n}] }} }}\n'
    )
    text = (
        'vg { id = "v" seqno = 1 extent_size = 8 physical_volumes { pv0 { id = "p" '
        "pe_start = 2048 pe_count = 100000 } }\nlogical_volumes {\n"
        + "".join(lv.format(n=i) for i in range(volumes))
        + "}\n}\n"
    )
    return text
