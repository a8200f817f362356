"""Forced decoding: a vLLM logits processor that makes a request generate given tokens.

A request whose ``SamplingParams.extra_args`` holds ``{FORCED_TOKENS: [t_1, .., t_k]}`` samples
``t_i`` at its i-th decode step: every other logit of its row is set to ``-inf``. vLLM's V1
sampler computes the log-probabilities it returns from the raw logits, before any logits
processor applies (``vllm/v1/sample/sampler.py``), so the log-probability reported for each
sampled token is the model's own ``log p(t_i | prompt, t_<i)``: scoring reads them
(``serving.core.scoring``). Requests without the key are untouched.

vLLM loads the class in its engine process when it is named at start-up
(``--logits-processors serving.core.forcing:ForcedTokens``, which the launcher adds); the
service checks the engine's configuration for that name before it relies on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from vllm.sampling_params import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

if TYPE_CHECKING:
    from vllm.config import VllmConfig

__all__ = ["FORCED_TOKENS", "PROCESSOR", "ForcedTokens", "is_registered"]

FORCED_TOKENS = "seqgpt_forced_tokens"
"""The ``extra_args`` key: the token ids a request must generate, in order."""
PROCESSOR = "serving.core.forcing:ForcedTokens"
"""The processor's name for vLLM's ``--logits-processors``."""


def is_registered(logits_processors: Sequence[object] | None) -> bool:
    """Whether an engine configured with ``logits_processors`` runs ``ForcedTokens``."""
    return any(p == PROCESSOR or p is ForcedTokens for p in logits_processors or ())


def _forced(params: SamplingParams) -> list[int] | None:
    value = (params.extra_args or {}).get(FORCED_TOKENS)
    return list(value) if value else None


class ForcedTokens(LogitsProcessor):
    """Makes each request with ``extra_args[FORCED_TOKENS]`` sample exactly those tokens."""

    def __init__(
        self,
        vllm_config: VllmConfig,  # noqa: ARG002 (vLLM's constructor signature)
        device: torch.device,  # noqa: ARG002
        is_pin_memory: bool,  # noqa: ARG002
    ) -> None:
        # batch index -> (the tokens to force, the request's live list of generated tokens)
        self._rows: dict[int, tuple[list[int], Sequence[int]]] = {}

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        """Refuse a forced-token list that is not a list of token ids."""
        value: Any = (sampling_params.extra_args or {}).get(FORCED_TOKENS)
        if value is None:
            return
        if not isinstance(value, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value
        ):
            raise ValueError(f"extra_args[{FORCED_TOKENS!r}] must be a list of token ids")

    def is_argmax_invariant(self) -> bool:
        """Forcing changes what greedy sampling picks."""
        return False

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        """Track the batch rows of requests that force tokens."""

        def new_state(
            params: SamplingParams, _prompt: list[int] | None, output: list[int]
        ) -> tuple[list[int], Sequence[int]] | None:
            forced = _forced(params)
            return None if forced is None else (forced, output)

        process_dict_updates(self._rows, batch_update, new_state)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Leave each forcing row one finite logit: its next forced token's."""
        if not self._rows:
            return logits
        rows: list[int] = []
        tokens: list[int] = []
        vocabulary = logits.shape[-1]
        for index, (forced, output) in self._rows.items():
            step = len(output)
            # An id outside the vocabulary forces nothing (the caller sees what was generated).
            if step < len(forced) and forced[step] < vocabulary:
                rows.append(index)
                tokens.append(forced[step])
        if rows:
            row_index = torch.tensor(rows, device=logits.device)
            token_index = torch.tensor(tokens, device=logits.device)
            logits[row_index] = float("-inf")
            logits[row_index, token_index] = 0.0
        return logits
