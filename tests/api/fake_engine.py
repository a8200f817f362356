"""A small fake of vLLM's EngineClient: scripted generations, recorded calls.

Only ``generate`` (plus the health attributes vLLM's error handlers read) is faked; everything
around it (the plugin's routes, vLLM's exception handlers, the service) is the real code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import SamplingParams


@dataclass
class Call:
    prompt: str
    params: SamplingParams
    request_id: str


@dataclass
class FakeEngine:
    """Answers each prompt with ``respond(prompt, params)``; raises it if it is an exception."""

    respond: Callable[[str, SamplingParams], str | BaseException] = lambda _p, _s: ""
    calls: list[Call] = field(default_factory=list)
    errored: bool = False
    is_running: bool = True

    async def generate(
        self, prompt: str, params: SamplingParams, request_id: str
    ) -> AsyncIterator[RequestOutput]:
        self.calls.append(Call(prompt, params, request_id))
        answer = self.respond(prompt, params)
        if isinstance(answer, BaseException):
            raise answer
        tokens = list(range(len(answer)))
        completion = CompletionOutput(0, answer, tokens, None, None, finish_reason="stop")
        yield RequestOutput(request_id, prompt, [1] * len(prompt), None, [completion], True)


class CharTokenizer:
    """One token per character: enough for the service's token budgets."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:  # noqa: ARG002
        return [ord(c) for c in text]
