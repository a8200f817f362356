"""Reference decoding: SeqGPT's official settings as far as vLLM allows.

The official code decodes with ``num_beams=4``, ``do_sample=False``, ``max_new_tokens=256``
(and ``repetition_penalty=2.0`` in ``inference.py``). This runs vLLM's own online beam search
(``BeamSearchOnlineMixin``, what ``/v1/completions`` uses for ``use_beam_search``) with 4 beams
over the same engine; vLLM's beam search takes no repetition penalty, so that one setting
differs. Each beam step is one engine request per beam, and the prompt's full KV blocks come
from the prefix cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vllm.entrypoints.generate.beam_search.online import BeamSearchOnlineMixin
from vllm.inputs import tokens_input
from vllm.outputs import RequestOutput
from vllm.sampling_params import BeamSearchParams

if TYPE_CHECKING:
    # vLLM's engine seam, as vLLM types it (a type only: no import at run time).
    from vllm.engine.protocol import EngineClient

__all__ = ["BEAM_WIDTH", "ReferenceDecoder"]

BEAM_WIDTH = 4


class _Renderer:
    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    def get_tokenizer(self) -> Any:
        return self._tokenizer


class ReferenceDecoder(BeamSearchOnlineMixin):
    """Beam search with SeqGPT's beam width, on an engine client and its tokenizer."""

    def __init__(self, engine: EngineClient, tokenizer: Any) -> None:
        self.engine_client = engine
        self.renderer = _Renderer(tokenizer)  # type: ignore[assignment]

    async def decode(self, token_ids: list[int], max_tokens: int, request_id: str) -> Any:
        """The best beam's ``CompletionOutput`` (``finish_reason`` "length" if it ran out)."""
        params = BeamSearchParams(beam_width=BEAM_WIDTH, max_tokens=max_tokens, temperature=0.0)
        final: RequestOutput | None = None
        async for output in self.beam_search(tokens_input(token_ids), request_id, params):
            final = output
        if final is None or not final.outputs:
            raise RuntimeError(f"beam search returned no output for {request_id}")
        return final.outputs[0]
