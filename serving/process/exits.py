"""How a server process ends: with its status, after the atexit handlers, without the
interpreter's teardown.

The single API server (``serving.process.server``) and each of several API servers under vLLM's
manager (``serving.process.apiservers``) end alike: ``exit_after`` runs vLLM's code and turns how
it ended into a status (0 when it returned, a ``SystemExit``'s code, 130 on an interrupt), and
``exit_quietly`` exits with it. The teardown's only output here is triton's nanobind report
("nanobind: leaked 4 instances! …", ~30 lines at every stop).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

__all__ = ["exit_after", "exit_quietly"]


def exit_after(run: Callable[[], object]) -> NoReturn:
    """Run ``run``, then exit quietly with the status its end means."""
    try:
        run()
    except SystemExit as exc:
        exit_quietly(exc.code if isinstance(exc.code, int) else int(exc.code is not None))
    except KeyboardInterrupt:  # SIGINT, or SIGTERM before uvicorn runs: a stop, not a crash
        exit_quietly(128 + signal.SIGINT)
    exit_quietly(0)


def exit_quietly(status: int) -> NoReturn:
    """Exit after the atexit handlers, skipping the interpreter's teardown."""
    # The launcher repeats its stop signal until we are gone: not a reason to interrupt this.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
