"""Serve one image through the FUSE view in a chosen concurrency mode (for bench/fuse.py).

    python bench/fuse_serve.py IMAGE MOUNTPOINT [--workers N] [--all-on-workers]
                               [--per-thread] [--readahead-kb K]

``--workers 0`` serves every request inline on the event loop; N > 0 (4 is what
``filerestore mount`` uses) serves file data on N threads, and with ``--all-on-workers``
metadata too; the threads share one stack (through the filesystem's lock) or, with
``--per-thread``, each opens its own. ``--readahead-kb`` is the mount's kernel read-ahead
(1024 by default, as ``filerestore mount`` sets it; 128 is FUSE's own default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from filerestore import fuse
from filerestore.restore import open_stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--all-on-workers", action="store_true")
    parser.add_argument("--per-thread", action="store_true")
    parser.add_argument("--readahead-kb", type=int, default=1024)
    args = parser.parse_args()
    stack = open_stack(args.image)
    stacks: fuse.SharedStack | fuse.StackPerThread
    if args.per_thread:
        stacks = fuse.StackPerThread(stack, lambda: open_stack(args.image))
    else:
        stacks = fuse.SharedStack(stack)

    try:
        fuse.serve(
            stacks,
            args.mountpoint,
            workers=args.workers,
            metadata_on_workers=args.all_on_workers,
            read_ahead_kb=args.readahead_kb,
        )
    finally:
        stacks.close()


if __name__ == "__main__":
    main()
