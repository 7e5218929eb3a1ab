"""Records made from rows and other records that name their fields alike.

A record (a dataclass) that carries a database row's or another record's fields under the
same names takes them with :func:`same_fields`; only the fields that are renamed, computed
or not in the source are spelled out, so a field added to both is carried without a copy.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def same_fields(record: type[Any], source: object, **given: Any) -> dict[str, Any]:
    """The arguments of the dataclass ``record``: ``given``, and every other field read from
    the attribute of ``source`` that has its name."""
    return {
        f.name: given[f.name] if f.name in given else getattr(source, f.name)
        for f in dataclasses.fields(record)
        if f.init
    }
