"""Entry point of the ``filerestore`` console script.

Each command module registers its commands on :data:`filerestore.cli.app.app` when imported;
adding a command is one row in :data:`filerestore.cli.command_table.COMMANDS`. Only the
module of the command being run is imported, so ``filerestore cat`` does not pay for the
database and web stacks that ``filerestore serve`` needs, and ``--help`` lists the commands
from the table without importing any (all are imported for an unknown command and for shell
completion; each imports its heavy dependencies inside its commands, so that stays
light too). Errors leave as one line on stderr and an exit code from
:mod:`filerestore.cli.exit_codes`, never as a traceback (set FILERESTORE_DEBUG=1 to see the
traceback of an unexpected error).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence

import click
from click.exceptions import Exit as ClickExit

from filerestore.cli import command_table, exit_codes
from filerestore.cli.app import app
from filerestore.errors import AmbiguousVolumeError, FileRestoreError

PROG = "filerestore"
#: the environment variable Click's shell completion scripts call the program with
COMPLETE_VAR = "_FILERESTORE_COMPLETE"

#: each command module and the top-level commands it registers (a test checks them)
COMMAND_MODULES: dict[str, tuple[str, ...]] = command_table.modules()


def load_all() -> None:
    """Import every command module (the CLI reference, shell completion)."""
    app.load_all()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code."""
    if argv is None and COMPLETE_VAR in os.environ:
        return _complete(os.environ[COMPLETE_VAR])
    args = list(sys.argv[1:] if argv is None else argv)
    bare = not args
    try:
        with app.make_context(PROG, args or ["--help"]) as ctx:
            _resume_collector()
            app.invoke(ctx)
        sys.stdout.flush()  # here, so a closed pipe is handled below, not at interpreter exit
    except ClickExit as exc:  # --help, --version, or a command that chose its code
        return exit_codes.USAGE if bare else exc.exit_code
    except click.ClickException as exc:  # bad option, missing argument, bad value
        group = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and group is not None:
            sys.stdout.write(group.get_help() + "\n")  # a bare group (`filerestore token`)
            return exit_codes.USAGE
        return _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        return _fail("interrupted", exit_codes.INTERRUPTED)
    except AmbiguousVolumeError as exc:
        return _fail(f"{exc} (with --volume)", exit_codes.exit_code(exc))
    except FileRestoreError as exc:
        return _fail(str(exc) or type(exc).__name__, exit_codes.exit_code(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", exit_codes.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`filerestore cat ... | head`): not an error worth a message.
        # Point stdout at /dev/null so the interpreter's final flush cannot raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exit_codes.FAILURE
    except OSError as exc:  # the host refused something: EACCES, ENOSPC, EISDIR ...
        return _fail(_os_error_message(exc), exit_codes.FAILURE)
    except Exception as exc:
        if os.environ.get("FILERESTORE_DEBUG"):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc}", exit_codes.FAILURE)
    return exit_codes.OK


def _resume_collector() -> None:
    """Turn the garbage collector back on if start-up paused it (:mod:`.console`), keeping
    every object start-up made out of later collections."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _complete(instruction: str) -> int:
    """Answer a shell completion script's request (see ``filerestore completion``)."""
    from click.shell_completion import shell_complete

    load_all()
    return shell_complete(app, {}, PROG, COMPLETE_VAR, instruction)


def _fail(message: str, code: int) -> int:
    line = " ".join(message.split())  # one line, whatever the message held
    sys.stderr.write(f"{PROG}: error: {line}\n")
    sys.stderr.flush()
    return code


def _os_error_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    name = exc.filename if exc.filename is not None else None
    return f"{reason}: {os.fsdecode(name)}" if name is not None else reason


def run() -> None:
    """The entry point of ``python -m filerestore.cli.main`` (the console script's is
    :func:`filerestore.cli.console.run`)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
