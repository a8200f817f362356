"""Per-label scores: the probability SeqGPT gives to answering exactly each label.

For a prompt ``P`` and a label of tokens ``t_1 .. t_L``::

    log p(label) = sum_i log p(t_i | P, t_<i) + log p(eos | P, t_1 .. t_L)

and the scores are these probabilities normalised over the label set (they sum to 1).

Two ways to read it, chosen once per engine (``Scorer.for_engine``):

- **Forced reads** (the engine runs ``serving.core.forcing.ForcedTokens``, which the launcher
  registers): one request per label with prompt ``P`` that is made to generate ``t_1 .. t_L,
  eos`` (``max_tokens = L + 1``, ``logprobs=0``). vLLM returns each sampled token's
  log-probability from the logits before the processor forced it, so the sum of the returned
  values is the formula above, and the output layer runs at ``L + 1`` rows per label only.
  Every read has the same prompt, so vLLM's prefix cache shares its whole KV blocks between the
  reads (in the same engine step too: blocks enter the cache when they are scheduled); each read
  computes the last partial block again, which is why the launcher picks the CPU backend's
  smallest block (32 tokens, not 128). A read that did not generate exactly its tokens is an
  error, never a score.
- **Prompt reads** (the fallback, e.g. the plugin in a plain ``vllm serve``): one request per
  label of prompt ``P + t`` with ``prompt_logprobs=0`` (each label token's log-probability given
  what precedes it) and ``logprob_token_ids=[eos]`` (the end at the step after); nothing is
  decoded. The output layer runs at every position the read computes. vLLM skips the cache for
  prompt log-probabilities by default, because the rows of cached positions are not computed;
  only the rows from the last prompt token on are needed here, so the cache is read and
  ``num_cached_tokens`` checked: a read whose hit reached past ``P`` runs again without it.

Every read has priority ``SCORE_PRIORITY`` (a batch request's reads 3, ``serving.core.turns``):
under ``--scheduling-policy priority`` (the launcher's default) the engine takes waiting task
requests (priority 0) before waiting score reads. But a step runs every request the engine holds,
so reads also yield (``ReadTurns``, a ``serving.core.turns.Turns``): while a task prompt is in the
engine, at most ``busy`` reads are (the others wait in this process, in order); with none, reads
fill the engine. A batch request's read holds one of the service's batch turns too.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vllm.inputs import TokensPrompt
from vllm.outputs import RequestOutput
from vllm.platforms import current_platform
from vllm.sampling_params import RequestOutputKind, SamplingParams

from serving.core.forcing import FORCED_TOKENS, is_registered
from serving.core.settings import Settings
from serving.core.turns import SCORE_PRIORITY, Turns, engine_priority

if TYPE_CHECKING:
    # vLLM's engine seam, as vLLM types it (a type only: no import at run time).
    from vllm.engine.protocol import EngineClient

__all__ = [
    "CPU_SCORE_READS",
    "CPU_SCORE_READS_BUSY",
    "SCORE_PRIORITY",
    "ReadTurns",
    "Scorer",
    "normalise",
]

CPU_SCORE_READS = 8
CPU_SCORE_READS_BUSY = 2
"""Score reads in the engine at once on the CPU backend, and beside a task prompt. Each read in
the engine lengthens the steps of a task prompt sent meanwhile, and a read there when it comes
stays for its whole few steps. A plain classification under 8 scores clients, 560M shape, AVX2
(``loadtest.scores_benchmark``, one run each), its latency ÷ idle and scores ÷ plain req/s at
c=16: no bound 16.4x and 0.62; 16/4 4.8x and 0.58; 16/1 4.8x; 8/8 3.7x and 0.54; 8/2 2.9x and
0.50."""


async def _last(
    engine: EngineClient,
    token_ids: list[int],
    params: SamplingParams,
    request_id: str,
    priority: int = SCORE_PRIORITY,
) -> Any:
    final: RequestOutput | None = None
    prompt = TokensPrompt(prompt_token_ids=token_ids)  # processed off the event loop
    async for output in engine.generate(prompt, params, request_id, priority=priority):
        final = output
    if final is None or not final.outputs:
        raise RuntimeError(f"engine returned no output for {request_id}")
    return final


def _forced_params(forced: list[int]) -> SamplingParams:
    return SamplingParams(
        max_tokens=len(forced),
        temperature=0.0,
        logprobs=0,
        detokenize=False,
        extra_args={FORCED_TOKENS: forced},
        # One output per read, not one per step: the API server's event loop, which every
        # other request shares, handles a read once.
        output_kind=RequestOutputKind.FINAL_ONLY,
    )


def _prompt_params(eos_token_id: int, read_cache: bool) -> SamplingParams:
    return SamplingParams(
        max_tokens=1,
        temperature=0.0,
        prompt_logprobs=0,
        logprob_token_ids=[eos_token_id],
        skip_reading_prefix_cache=not read_cache,
        detokenize=False,
    )


class ReadTurns(Turns):
    """Turns for score reads (``serving.core.turns``): at most ``busy`` in the engine while a task
    prompt is there, at most ``idle`` otherwise; waiting reads go in arrival order."""

    @classmethod
    def for_device(cls, settings: Settings, max_seqs: int) -> ReadTurns:
        """The bounds the settings give, else the CPU backend's (``CPU_SCORE_READS``, ``_BUSY``),
        else none (``max_seqs``) on a device of its own."""
        cpu = current_platform.is_cpu()
        idle = settings.max_score_reads or (CPU_SCORE_READS if cpu else max_seqs)
        busy = settings.max_score_reads_busy or (CPU_SCORE_READS_BUSY if cpu else idle)
        return cls(busy=min(busy, idle), idle=idle)

    @property
    def reads(self) -> int:
        """Reads holding a turn (in the engine)."""
        return self.holding

    @property
    def tasks(self) -> int:
        """Task prompts in the engine."""
        return self.others

    def read(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold a turn for one read."""
        return self.turn()

    def task(self) -> contextlib.AbstractContextManager[None]:
        """A task prompt in the engine: reads get ``busy`` turns until the last one leaves."""
        return self.busy_while()


class Scorer:
    """``log p(label)`` for every label of a prompt, on one engine."""

    def __init__(
        self, engine: EngineClient, eos_token_id: int, *, forced: bool, turns: ReadTurns
    ) -> None:
        self._engine = engine
        self._eos = eos_token_id
        self.turns = turns
        self.forced = forced
        """Whether labels are read by forced decoding (else by prompt log-probabilities)."""

    @classmethod
    def for_engine(cls, engine: EngineClient, eos_token_id: int, turns: ReadTurns) -> Scorer:
        """Forced reads where the engine runs ``ForcedTokens``, prompt reads elsewhere."""
        config = getattr(engine, "model_config", None)  # None: no engine (prompts only)
        processors = getattr(config, "logits_processors", None)
        return cls(engine, eos_token_id, forced=is_registered(processors), turns=turns)

    async def label_logprobs(
        self,
        prompt_ids: list[int],
        labels_ids: Sequence[list[int]],
        request_id: str,
        batch: Turns | None = None,
    ) -> list[float]:
        """``log p(label)`` for every label, in order; the reads submitted together. Batch work
        (``batch``: the service's batch turns) reads at batch priority, each read holding a batch
        turn too."""
        async with asyncio.TaskGroup() as group:
            reads = [
                group.create_task(self._read(prompt_ids, ids, f"{request_id}-{i}", batch))
                for i, ids in enumerate(labels_ids)
            ]
        return [r.result() for r in reads]

    async def _read(
        self, prompt_ids: list[int], label_ids: list[int], rid: str, batch: Turns | None
    ) -> float:
        priority = engine_priority(batch=batch is not None, score=True)
        async with contextlib.AsyncExitStack() as turns:
            if batch is not None:  # a batch turn first, then a read's: one order, no deadlock
                await turns.enter_async_context(batch.turn())
            await turns.enter_async_context(self.turns.read())  # among every scored request's
            read = self._forced_read if self.forced else self._prompt_read
            return await read(prompt_ids, label_ids, rid, priority)

    async def _forced_read(
        self, prompt_ids: list[int], label_ids: list[int], rid: str, priority: int
    ) -> float:
        forced = [*label_ids, self._eos]
        params = _forced_params(forced)
        output = (await _last(self._engine, prompt_ids, params, rid, priority)).outputs[0]
        generated = list(output.token_ids)
        if generated != forced or output.logprobs is None:
            raise RuntimeError(f"forced read {rid} generated {generated}, not {forced}")
        steps = zip(output.logprobs, forced, strict=True)
        return float(sum(step[token].logprob for step, token in steps))

    async def _prompt_read(
        self, prompt_ids: list[int], label_ids: list[int], rid: str, priority: int
    ) -> float:
        token_ids = prompt_ids + label_ids
        params = _prompt_params(self._eos, True)
        final = await _last(self._engine, token_ids, params, rid, priority)
        if (final.num_cached_tokens or 0) >= len(prompt_ids):
            # The rows of the label tokens were read from the cache, not computed: run it again.
            params = _prompt_params(self._eos, False)
            final = await _last(self._engine, token_ids, params, f"{rid}-again", priority)
        rows = final.prompt_logprobs
        if rows is None:
            raise RuntimeError(f"engine returned no prompt log-probabilities for {rid}")
        start = len(prompt_ids)
        total = sum(rows[start + i][token].logprob for i, token in enumerate(label_ids))
        eos = final.outputs[0].logprobs[0][self._eos].logprob
        return float(total + eos)


def normalise(logprobs: Sequence[float]) -> list[float]:
    """Probabilities over the set (a softmax of the log-probabilities), summing to 1."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]
