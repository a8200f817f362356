"""What every command of the CLI does alike: a user error in one line, keys kept out of ``ps``.

A key given as ``--api-key KEY`` is in the process's command line (``/proc/PID/cmdline``), which
every user of the machine can read. ``main`` blanks it out first thing, before typer parses and
before any command runs (``hide_keys_in_argv``); that still leaves it readable from the moment
the process starts until then (the interpreter's start and the imports), which is why the
commands also take the key from a file (``--api-key-file``) or ``$VLLM_API_KEY``: never on the
command line at all.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

__all__ = ["KEY_FLAGS", "fail", "hide_keys_from_process_list", "hide_keys_in_argv", "keys_in_argv"]

KEY_FLAGS = ("--api-key", "--api_key")
"""The flags whose value is a key (``serve`` passes vLLM's own ``--api-key`` through too)."""


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2 (a usage error)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def hide_keys_from_process_list(keys: list[str]) -> None:
    """Blank the keys out of our own title (/proc/PID/cmdline) as soon as we run."""
    if not keys:
        return
    # setproctitle: a C extension, loaded only when a key must be hidden.
    from setproctitle import setproctitle

    title = " ".join(sys.argv)
    for key in keys:
        title = title.replace(key, "***")
    setproctitle(title)


def keys_in_argv(argv: list[str]) -> list[str]:
    """The values of every key flag in ``argv`` (``--api-key KEY`` and ``--api-key=KEY``)."""
    keys: list[str] = []
    for i, arg in enumerate(argv):
        flag, equals, value = arg.partition("=")
        if flag in KEY_FLAGS and equals:
            keys.append(value)
        elif arg in KEY_FLAGS and i + 1 < len(argv):
            keys.append(argv[i + 1])
    return [key for key in keys if key]


def hide_keys_in_argv(argv: list[str]) -> None:
    """Blank every key of the command ``argv`` out of this process's ``/proc/PID/cmdline``."""
    hide_keys_from_process_list(keys_in_argv(argv))
