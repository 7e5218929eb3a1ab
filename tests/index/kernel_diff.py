"""The difference between two states of the chain of known changes
(tests/imagebuild/index_chain.py) as the kernel saw them: what a diff of the index must give."""

from __future__ import annotations

from pathlib import Path

from tests.imagebuild.index_chain import facts

#: where a path counts as changed between two states (what makes a new version)
CHANGE_FIELDS = ("kind", "size", "mode", "uid", "gid", "mtime_ns", "ctime_ns", "inode", "nlink")


def kernel_diff(chain: Path, a: int, b: int) -> set[tuple[str, str]]:
    """``(change, path)`` for every path added, removed or changed from state ``a`` to ``b``."""
    old, new = facts(chain, a), facts(chain, b)
    out = {("added", p) for p in new.keys() - old.keys()}
    out |= {("removed", p) for p in old.keys() - new.keys()}
    out |= {
        ("changed", p)
        for p in old.keys() & new.keys()
        if any(old[p][f] != new[p][f] for f in CHANGE_FIELDS)
    }
    return out
