"""Several API servers (``--api-server-count N > 1``, or data parallel): the drain reaches each.

With one API server the launcher's child is that server, and the launcher asks it to drain with
SIGUSR1 once it handles that signal (``serving.process.supervisor``). With N > 1, vLLM's ``serve``
command runs a manager process instead (``run_multi_api_server``): it owns the engine and starts N
API server processes below it, each with our plugin and its own drain. The launcher's child is
then the manager, so ``relay_drain`` makes the manager relay:

- the manager handles SIGUSR1 only once every API server does: to the launcher, as for one
  server, "it serves" (a stop asked for earlier is a SIGTERM, on which vLLM abandons its start);
- on SIGUSR1 it sends SIGUSR1 to every API server: each drains its own requests in flight (for
  up to ``SEQGPT_DRAIN_TIMEOUT_S``) and exits 0;
- once all have exited (and are reaped: vLLM's own wait would otherwise see a server whose pipe
  closed before its exit status exists, "died with exit code None"), it stops itself as on
  SIGTERM: vLLM's handler then stops the engine;
- each API server exits as the single server does, skipping the interpreter's teardown and with
  it triton's ~30-line nanobind report (``run_api_server``).

vLLM's manager waits on its processes in ``wait_for_completion_or_failure``, in its main thread
(the only thread that may install a signal handler), once the API servers exist; it starts each
with ``vllm.v1.utils.run_api_server_worker_proc``. ``relay_drain`` wraps both in the manager.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing import connection
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from serving.process.exits import exit_after
from serving.process.supervisor import catches

__all__ = ["relay_drain", "run_api_server"]

POLL_S = 0.1


def relay_drain() -> None:
    """Make vLLM's multi-API-server manager relay the launcher's drain to its API servers."""
    # vLLM's serve command: only in the process it patches.
    import vllm.entrypoints.cli.serve as serve
    import vllm.v1.utils as v1_utils
    from vllm.v1.utils import APIServerProcessManager

    wait: Callable[..., None] = serve.wait_for_completion_or_failure  # type: ignore[attr-defined]
    if getattr(wait, "relays_drain", False):
        return

    def wait_relaying(api_server_manager: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(api_server_manager, APIServerProcessManager):
            servers = list(api_server_manager.processes)
            if _await_ready(servers):
                signal.signal(signal.SIGUSR1, _Relay(servers))
        wait(api_server_manager, *args, **kwargs)

    wait_relaying.relays_drain = True  # type: ignore[attr-defined]
    serve.wait_for_completion_or_failure = wait_relaying  # type: ignore[attr-defined]
    v1_utils.run_api_server_worker_proc = run_api_server


def run_api_server(*args: Any, **kwargs: Any) -> None:
    """An API server process of vLLM's manager (vLLM's own function, then a quiet exit)."""
    # vLLM: only in an API server process.
    from vllm.v1 import utils

    run = utils.run_api_server_worker_proc
    if run is run_api_server:  # only where relay_drain ran: the manager, not a server
        raise RuntimeError("run_api_server runs in an API server process, not in the manager")
    exit_after(lambda: run(*args, **kwargs))


def _await_ready(servers: Sequence[BaseProcess]) -> bool:
    """Wait until every server handles SIGUSR1 (True) or one has exited (False)."""
    sentinels = [server.sentinel for server in servers]
    while not all(server.pid and catches(server.pid, signal.SIGUSR1) for server in servers):
        if connection.wait(sentinels, timeout=POLL_S):
            return False
    return True


class _Relay:
    """The manager's SIGUSR1 handler: the drain goes to each API server; once all have exited,
    the manager stops as on SIGTERM (vLLM's handler, which stops the engine)."""

    def __init__(self, servers: Sequence[BaseProcess]) -> None:
        self._servers = servers
        self._relayed = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        if self._relayed:
            return
        self._relayed = True
        for server in self._servers:
            if server.pid and server.exitcode is None:
                try:
                    os.kill(server.pid, signal.SIGUSR1)
                except ProcessLookupError:
                    continue
        # A SIGTERM meanwhile (the launcher's, after the drain window) interrupts this wait with
        # vLLM's handler, which stops everything.
        for server in self._servers:
            server.join()
        os.kill(os.getpid(), signal.SIGTERM)
