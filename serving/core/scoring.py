"""Per-label scores: the probability SeqGPT gives to answering exactly each label.

For a prompt ``P`` and a label of tokens ``t_1 .. t_L``::

    log p(label) = sum_i log p(t_i | P, t_<i) + log p(eos | P, t_1 .. t_L)

and the scores are these probabilities normalised over the label set (they sum to 1).

One engine request per label computes it in one forward pass: its prompt is ``P + t``,
``prompt_logprobs=0`` returns the log-probability of each label token given what precedes it,
and ``logprob_token_ids=[eos]`` the log-probability of the end of the answer at the step after.
No token is decoded.

The prompt's whole KV blocks are computed once: the reads are submitted together, and vLLM's
prefix cache hands the full blocks of ``P`` that one read computes to the others, in the same
engine step too (blocks enter the cache when they are scheduled). The last partial block is not
cached, so each read computes it again (up to 127 tokens with the CPU backend's 128-token
blocks, 15 with CUDA's 16), with the output layer at each of its positions.

vLLM skips the cache for requests with prompt log-probabilities by default, because the rows of
cached positions are not computed; only the rows from the last prompt token on are needed here,
so the cache is read and ``num_cached_tokens`` is checked: a read whose cache hit reached past
``P`` (a label sharing a whole cached block with an earlier request) runs again without it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from vllm.inputs import TokensPrompt
from vllm.outputs import RequestOutput
from vllm.sampling_params import SamplingParams

__all__ = ["label_logprobs", "normalise"]


def _params(eos_token_id: int, read_cache: bool) -> SamplingParams:
    return SamplingParams(
        max_tokens=1,
        temperature=0.0,
        prompt_logprobs=0,
        logprob_token_ids=[eos_token_id],
        skip_reading_prefix_cache=not read_cache,
        detokenize=False,
    )


async def _last(engine: Any, token_ids: list[int], params: SamplingParams, request_id: str) -> Any:
    final: RequestOutput | None = None
    prompt = TokensPrompt(prompt_token_ids=token_ids)
    async for output in engine.generate(prompt, params, request_id):
        final = output
    if final is None or not final.outputs or final.prompt_logprobs is None:
        raise RuntimeError(f"engine returned no log-probabilities for {request_id}")
    return final


async def _label_logprob(
    engine: Any, prompt_ids: list[int], label_ids: list[int], eos_token_id: int, request_id: str
) -> float:
    token_ids = prompt_ids + label_ids
    final = await _last(engine, token_ids, _params(eos_token_id, True), request_id)
    if (final.num_cached_tokens or 0) >= len(prompt_ids):
        # The rows of the label tokens were read from the cache, not computed: run it again.
        final = await _last(engine, token_ids, _params(eos_token_id, False), f"{request_id}-again")
    rows = final.prompt_logprobs
    start = len(prompt_ids)
    total = sum(rows[start + i][token].logprob for i, token in enumerate(label_ids))
    eos = final.outputs[0].logprobs[0][eos_token_id].logprob
    return float(total + eos)


async def label_logprobs(
    engine: Any,
    prompt_ids: list[int],
    labels_ids: Sequence[list[int]],
    eos_token_id: int,
    request_id: str,
) -> list[float]:
    """``log p(label)`` for every label, in order; the prompt prefilled once."""
    async with asyncio.TaskGroup() as group:
        reads = [
            group.create_task(
                _label_logprob(engine, prompt_ids, ids, eos_token_id, f"{request_id}-{i}")
            )
            for i, ids in enumerate(labels_ids)
        ]
    return [read.result() for read in reads]


def normalise(logprobs: Sequence[float]) -> list[float]:
    """Probabilities over the set (a softmax of the log-probabilities), summing to 1."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]
