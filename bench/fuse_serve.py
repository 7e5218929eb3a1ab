"""Serve one image through the FUSE view in a chosen concurrency mode (for bench/fuse.py).

    python bench/fuse_serve.py IMAGE MOUNTPOINT [--workers N] [--per-thread] [--readahead-kb K]

``--workers 0`` (the default of ``filerestore mount``) serves every request inline on the
event loop; N > 0 runs the blocking part of each request on N threads, sharing one stack
(through the filesystem's lock) or, with ``--per-thread``, one stack per thread.
``--readahead-kb`` sets the mount's kernel read-ahead once it is up (the kernel's default
for FUSE is 128 KiB; each read request is at most that, or 1 MiB with more read-ahead).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from filerestore import fuse
from filerestore.restore import open_stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--per-thread", action="store_true")
    parser.add_argument("--readahead-kb", type=int, default=0)
    args = parser.parse_args()
    stack = open_stack(args.image)
    stacks: fuse.SharedStack | fuse.StackPerThread
    if args.per_thread:
        stacks = fuse.StackPerThread(stack, lambda: open_stack(args.image))
    else:
        stacks = fuse.SharedStack(stack)

    def ready() -> None:
        if args.readahead_kb:
            dev = args.mountpoint.stat().st_dev
            bdi = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
            bdi.write_text(str(args.readahead_kb))

    try:
        fuse.serve(stacks, args.mountpoint, workers=args.workers, on_ready=ready)
    finally:
        stacks.close()


if __name__ == "__main__":
    main()
