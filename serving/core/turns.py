"""Turns in the engine: how many of one kind of work it holds at once, fewer while other work is
there.

On the CPU backend an engine step runs every request the engine holds and costs about its
prompt tokens, so each request of a yielding kind (score reads, batch work) that is in the engine
lengthens the steps of the work it should yield to; and vLLM does not take a running request
out for a waiting one of higher priority. So the yielding kind takes turns in the API process:
at most ``busy`` of it in the engine while the work it yields to is there (``busy_while``), at
most ``idle`` otherwise; the others wait here in arrival order, and a waiter whose request is
cancelled leaves the queue (or gives back the turn it was just handed).

``serving.core.scoring``'s ``ReadTurns`` are score reads yielding to task prompts in the engine;
the service's batch turns are batch prompts yielding to interactive requests it holds. One event
loop, no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterator

__all__ = [
    "BATCH_PRIORITY",
    "CPU_BATCH_PROMPTS",
    "CPU_BATCH_PROMPTS_BUSY",
    "SCORE_PRIORITY",
    "TASK_PRIORITY",
    "Turns",
    "batch_turns",
    "engine_priority",
]


class Turns:
    """At most ``busy`` turns held while other work is there (``busy_while``), ``idle`` otherwise;
    waiters served in arrival order."""

    def __init__(self, *, busy: int, idle: int) -> None:
        self.busy, self.idle = busy, idle
        self.holding = 0
        """Turns held (work of this kind in the engine)."""
        self.others = 0
        """The work this kind yields to, there now (``busy_while`` blocks)."""
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Work waiting for a turn (cancelled waiters may still be counted until handed over)."""
        return sum(not waiter.done() for waiter in self._waiting)

    def _room(self) -> bool:
        return self.holding < (self.busy if self.others else self.idle)

    def _hand_over(self) -> None:
        while self._waiting and self._room():
            waiter = self._waiting.popleft()
            if not waiter.done():  # a cancelled waiter has left
                waiter.set_result(None)
                self.holding += 1

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a turn for one piece of work (wait for it, in order, if there is none now)."""
        if self._room() and not self._waiting:
            self.holding += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed a turn, then cancelled
                    self.holding -= 1
                    self._hand_over()
                raise
        try:
            yield
        finally:
            self.holding -= 1
            self._hand_over()

    @contextlib.contextmanager
    def busy_while(self) -> Iterator[None]:
        """Work this kind yields to is there: ``busy`` turns until the last such block ends."""
        self.others += 1
        try:
            yield
        finally:
            self.others -= 1
            self._hand_over()


TASK_PRIORITY = 0
"""The engine priority of an interactive task prompt (vLLM schedules lower values first)."""
SCORE_PRIORITY = 1
"""The engine priority of an interactive request's score reads: after waiting task prompts."""
BATCH_PRIORITY = 2
"""Added for batch work: its task prompts (2) and score reads (3) come after every interactive
request the engine has waiting."""


def engine_priority(*, batch: bool, score: bool = False) -> int:
    """The priority an engine request is submitted with (``--scheduling-policy priority``)."""
    return (BATCH_PRIORITY if batch else TASK_PRIORITY) + (SCORE_PRIORITY if score else 0)


CPU_BATCH_PROMPTS = 16
CPU_BATCH_PROMPTS_BUSY = 1
"""Batch prompts in the engine at once on the CPU backend, and beside interactive work. An
engine step costs about its prompt tokens there, and batch prompts already in the engine when an
interactive request comes stay there (vLLM does not take a running request out), so the idle
bound decides the interactive request's wait and the busy bound its steps, and too small an idle
bound starves the batch job. Ad-hoc runs, one each, 560M shape, eager, on 2 cores other work
shared (load average 2-8: noisy), a 6-label classification's median ÷ its idle one, and the
batch rows/s alone: 2 clients posting /v1/classify/batch of 64 texts in a loop: no bounds 24.8x;
16/1 3.8x; 8/1 2.7x; 4/1 1.7x; rows/s no bound 14.9, 8: 14.9, 4: 5.3. 64 rows in flight with
``X-SeqGPT-Priority: batch`` (the batch CLI): no bounds 6.4-14.6x, 13.8-17.3 rows/s; 16/1 5.4x,
11.2 rows/s; 8/1 1.1-6.2x, 3.2-7.5 rows/s. To be tuned with the benchmark."""


def batch_turns(max_batch: int | None, max_batch_busy: int | None, bound: int) -> Turns:
    """The batch turns the settings give (``SEQGPT_MAX_BATCH_PROMPTS``, ``_BUSY``), else the CPU
    backend's (``CPU_BATCH_PROMPTS``, ``_BUSY``), else the whole ``bound`` on a device of its own
    (the engine's priority queue still puts interactive prompts first there)."""
    # vLLM: only where an engine runs, as the service that asks.
    from vllm.platforms import current_platform

    cpu = current_platform.is_cpu()
    idle = max_batch or (min(CPU_BATCH_PROMPTS, bound) if cpu else bound)
    busy = max_batch_busy or (CPU_BATCH_PROMPTS_BUSY if cpu else idle)
    return Turns(busy=min(busy, idle), idle=idle)
