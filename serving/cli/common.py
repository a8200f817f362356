"""What every command of the CLI does alike: a user error in one line, keys kept out of ``ps``."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

__all__ = ["fail", "hide_keys_from_process_list"]


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2 (a usage error)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def hide_keys_from_process_list(keys: list[str]) -> None:
    """Blank the keys out of our own title (/proc/PID/cmdline) as soon as we run."""
    if not keys:
        return
    from setproctitle import setproctitle

    title = " ".join(sys.argv)
    for key in keys:
        title = title.replace(key, "***")
    setproctitle(title)
