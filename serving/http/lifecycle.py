"""Graceful stop: finish what is in flight, refuse what is new, then exit.

uvicorn, told to stop, closes its socket at once: a client sent elsewhere by a load balancer a
moment too late gets "connection refused", and requests in flight get the server's shutdown
deadline. The stop therefore has a step before it. The launcher (``serving.process.supervisor``)
answers the SIGTERM it receives with SIGUSR1 to a server that handles it; on SIGUSR1 the server
starts draining:

1. every new request, ``/health`` included (so load balancers and Kubernetes take the replica
   out), gets a 503 in the common error body with ``Retry-After``; ``/metrics`` stays readable;
2. requests in flight run to their end, for up to ``SEQGPT_DRAIN_TIMEOUT_S``;
3. then the server stops in its own event loop: uvicorn's shutdown, then vLLM's engine shutdown
   (its SIGTERM handler does the latter from a worker thread, racing its output handler, which
   then logs a traceback), and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

__all__ = ["Drain"]

logger = logging.getLogger(__name__)
POLL_S = 0.05


class Drain:
    """The server's drain state and the count of requests in flight (kept by ``Gate``)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.draining = False
        self.active = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, state: Any) -> None:
        """Begin draining; stop the server (``state.server``, uvicorn's) once idle or late."""
        if self.draining:
            return
        self.draining = True
        logger.info("seqgpt: draining %d requests in flight, then stopping", self.active)
        self._task = asyncio.get_running_loop().create_task(self._stop_when_idle(state))

    async def _stop_when_idle(self, state: Any) -> None:
        deadline = time.monotonic() + self.timeout_s
        # vLLM sets ``state.server`` as it starts uvicorn, right after the plugins' set-up.
        while (self.active > 0 and time.monotonic() < deadline) or not hasattr(state, "server"):
            await asyncio.sleep(POLL_S)
        if self.active > 0:
            logger.warning("seqgpt: stopping with %d requests still in flight", self.active)
        state.server.should_exit = True
