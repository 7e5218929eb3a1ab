"""Every top-level command: the module that defines it, and the summary ``--help`` lists.

The root group (:class:`filerestore.cli.app.LazyGroup`) reads this table so that
``filerestore --help`` lists every command without importing a single command module, and
``filerestore ls`` imports only the module of ``ls`` (start-up time, issue 14). Adding a
command is one row here; ``tests/cli/test_main.py`` checks that each module registers exactly
its rows and that each summary is the first paragraph of the command's own help, so the
table cannot drift from the commands.
"""

from __future__ import annotations

_CORE = "filerestore.cli.core_commands"
_MOUNT = "filerestore.cli.mount_commands"
_CATALOG = "filerestore.cli.catalog_commands"
_RESTORE = "filerestore.cli.restore_commands"
_SERVE = "filerestore.cli.serve_commands"
_INDEX = "filerestore.cli.index_commands"

#: command name -> (its module, the first paragraph of its help), in the order `--help` lists
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": (_CORE, "Show the backing chain, volumes and filesystems of IMAGE."),
    "ls": (_CORE, "List a directory inside IMAGE, like `ls -l`."),
    "stat": (_CORE, "Show the metadata of one entry inside IMAGE."),
    "cat": (_CORE, "Write a file inside IMAGE to standard output."),
    "get": (_CORE, "Copy a file or directory tree out of IMAGE into DEST."),
    "mount": (_MOUNT, "Mount the filesystem inside IMAGE read-only (FUSE)."),
    "umount": (_MOUNT, "Unmount a `filerestore mount`."),
    "repo": (_CATALOG, "Backup repositories: add, list, remove."),
    "scan": (_CATALOG, "Register every disk image in a repository."),
    "backups": (_CATALOG, "List registered backups and their status."),
    "mounts": (_CATALOG, "List restore sessions."),
    "cleanup": (_CATALOG, "Remove expired and stuck sessions, or every one."),
    "db": (_CATALOG, "Database schema: upgrade, downgrade, current."),
    "jobs": (_RESTORE, "Restore jobs: list, show, cancel, run."),
    "restore": (
        _RESTORE,
        "Restore PATHs from session MOUNT_ID (`mounts`) into a configured target, as a job.",
    ),
    "token": (_SERVE, "API tokens: create (shown once), list, revoke."),
    "serve": (_SERVE, "Run the REST API and the web page."),
    "index": (_INDEX, "The file index: status, jobs, queue, run, cancel."),
    "search": (
        _INDEX,
        "Search every indexed backup for NAME (a substring, any case): paths with their "
        "versions and the backups holding them. Dates without a zone are UTC.",
    ),
    "find": (_INDEX, "Same as `search`."),
    "history": (
        _INDEX,
        "Every version of PATH across the backups of the disk of BACKUP_ID, and when it "
        "appeared, changed and vanished.",
    ),
    "diff": (
        _INDEX,
        "What differs between backups OLD and NEW of one disk: + added, - removed, "
        'M changed (the fields named), then totals. --json: {"entries": [...], '
        '"totals": {...}}, the entries written as they are found.',
    ),
    "completion": ("filerestore.cli.completion", "Print the shell completion script."),
}


def modules() -> dict[str, tuple[str, ...]]:
    """Each command module and the top-level commands it registers, in table order."""
    found: dict[str, tuple[str, ...]] = {}
    for name, (module, _summary) in COMMANDS.items():
        found[module] = (*found.get(module, ()), name)
    return found
