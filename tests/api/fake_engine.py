"""A small fake of vLLM's EngineClient: scripted generations, recorded calls.

Only ``generate`` (plus the attributes the plugin and vLLM's error handlers read) is faked;
everything around it (the plugin's routes, gate and error handlers, vLLM's exception handlers,
the service) is the real code. The fake tokenizer is one token per character, so the engine
turns token ids back into the prompt text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import SamplingParams


@dataclass
class Call:
    prompt: str
    params: SamplingParams
    request_id: str


class CharTokenizer:
    """One token per character: enough for the service's token budgets."""

    def encode(self, text: str, **_kwargs: Any) -> list[int]:
        return [ord(c) for c in text]


@dataclass
class FakeEngine:
    """Answers each prompt with ``respond(prompt, params)``; raises it if it is an exception.

    ``finish_reason`` is what every generation reports; ``delay`` makes each one take that long
    (cancellation shows in ``cancelled``).
    """

    respond: Callable[[str, SamplingParams], str | BaseException] = lambda _p, _s: ""
    calls: list[Call] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    finish_reason: str = "stop"
    delay: float = 0.0
    errored: bool = False
    is_running: bool = True
    max_num_seqs: int = 8
    max_model_len: int = 2048

    async def check_health(self) -> None:
        if self.errored:
            raise RuntimeError("engine dead")

    @property
    def vllm_config(self) -> Any:
        return SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=self.max_num_seqs))

    @property
    def model_config(self) -> Any:
        return SimpleNamespace(max_model_len=self.max_model_len)

    @property
    def renderer(self) -> Any:
        return SimpleNamespace(get_tokenizer=CharTokenizer)

    async def generate(
        self, prompt: dict[str, list[int]], params: SamplingParams, request_id: str
    ) -> AsyncIterator[RequestOutput]:
        text = "".join(map(chr, prompt["prompt_token_ids"]))
        self.calls.append(Call(text, params, request_id))
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.append(request_id)
            raise
        answer = self.respond(text, params)
        if isinstance(answer, BaseException):
            raise answer
        tokens = list(range(len(answer)))
        completion = CompletionOutput(
            0, answer, tokens, None, None, finish_reason=self.finish_reason
        )
        yield RequestOutput(request_id, text, [1] * len(text), None, [completion], True)
