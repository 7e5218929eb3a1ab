"""The ``filerestore`` console script: start-up runs with the cyclic garbage collector paused.

Start-up makes objects that live until exit (modules, classes, functions, Click's commands),
and the collector would scan them again and again while they are made: about a sixth of the
CPU time of `filerestore ls` of a small directory (issue 14; ``bench/startup.py``). The
collector is paused here, before anything else is imported, and
:func:`filerestore.cli.main.main` resumes it just before the command runs, after freezing
what start-up made (no collection scans it again), so a long command (``serve``, ``mount``, a
large ``get``) runs with the collector on. ``python -m filerestore.cli.main`` starts with it on.
"""

from __future__ import annotations

import gc
import sys


def run() -> None:
    """Console-script entry point."""
    gc.disable()
    from filerestore.cli.main import main

    sys.exit(main())
