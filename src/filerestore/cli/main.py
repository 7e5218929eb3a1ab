"""Entry point of the ``filerestore`` console script.

Each command module registers its commands on :data:`filerestore.cli.app.app` when imported;
adding a module is one import line below. Errors leave as one line on stderr and an exit code
from :mod:`filerestore.cli.exit_codes`, never as a traceback (set FILERESTORE_DEBUG=1 to see
the traceback of an unexpected error).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer
from typer.exceptions import TyperException

# Command modules register their commands on `app` when imported: one line per module, in
# the redundant-alias form so that neither the linter nor the import sorter touches it.
from filerestore.cli import catalog_commands as catalog_commands  # repo, scan, backups, ...
from filerestore.cli import core_commands as core_commands  # inspect, ls, stat, cat, get
from filerestore.cli import exit_codes
from filerestore.cli import serve_commands as serve_commands  # serve, token
from filerestore.cli.app import app
from filerestore.errors import FileRestoreError

PROG = "filerestore"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    bare = not args
    command = typer.main.get_command(app)
    try:
        with command.make_context(PROG, args or ["--help"]) as ctx:
            command.invoke(ctx)
        sys.stdout.flush()  # here, so a closed pipe is handled below, not at interpreter exit
    except typer.Exit as exc:  # --help, or a command that chose its code
        return exit_codes.USAGE if bare else exc.exit_code
    except TyperException as exc:  # bad option, missing argument, bad value (Click's errors)
        group = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and group is not None:
            sys.stdout.write(group.get_help() + "\n")  # a bare group (`filerestore token`)
            return exit_codes.USAGE
        return _fail(exc.format_message(), exc.exit_code)
    except typer.Abort:
        return _fail("interrupted", exit_codes.INTERRUPTED)
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
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
