"""``filerestore completion SHELL``: the shell completion script, as kubectl and gh print theirs.

Click completes commands, options and image paths; the script calls ``filerestore`` back with
``_FILERESTORE_COMPLETE`` set (answered in :func:`filerestore.cli.main.main`). Install it for
one user with ``eval "$(filerestore completion bash)"`` in ``~/.bashrc``, or for everyone with
``filerestore completion bash > /etc/bash_completion.d/filerestore``.
"""

from __future__ import annotations

import click

from filerestore.cli.app import app

SHELLS = ("bash", "zsh", "fish")


@app.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script.

    SHELL is bash, zsh or fish.

    \b
    bash:  eval "$(filerestore completion bash)"   (in ~/.bashrc)
    zsh:   eval "$(filerestore completion zsh)"    (in ~/.zshrc)
    fish:  filerestore completion fish > ~/.config/fish/completions/filerestore.fish
    """
    from click.shell_completion import get_completion_class

    from filerestore.cli.main import COMPLETE_VAR, PROG

    complete = get_completion_class(shell)
    assert complete is not None  # every name in SHELLS is one of Click's
    click.echo(complete(app, {}, PROG, COMPLETE_VAR).source())
