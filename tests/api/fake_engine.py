"""A small fake of vLLM's EngineClient: scripted generations, recorded calls.

Only ``generate`` (plus the attributes the plugin and vLLM's error handlers read) is faked;
everything around it (the plugin's routes, gate and error handlers, vLLM's exception handlers,
the service) is the real code. The fake tokenizer is one token per character (token 0 is the
end of sequence), so the engine turns token ids back into the prompt text.

Log-probabilities follow ``respond``: after the prompt's ``[GEN]`` marker, a token that continues
the scripted answer has log-probability ``-0.1``, any other ``-2.0``; the end of sequence is
``-0.1`` right after the whole answer, else ``-3.0``. So scores rank the scripted label first,
and beam search (one-token requests with ``logprobs``) spells the scripted answer. A request
forcing tokens (``serving.core.forcing``) generates them, each with its scripted log-probability.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import torch
from vllm.logprobs import Logprob
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import SamplingParams

from serving.core.forcing import FORCED_TOKENS


@dataclass
class Call:
    prompt: str
    params: SamplingParams
    request_id: str
    priority: int = 0
    rendered: str | None = None  # the input's "type" ("token": tokens the engine takes as is)


class CharTokenizer:
    """One token per character: enough for the service's token budgets."""

    eos_token_id = 0

    def encode(self, text: str, **_kwargs: Any) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, token_ids: list[int], **_kwargs: Any) -> str:
        return "".join(chr(t) for t in token_ids if t != self.eos_token_id)


GEN = "[GEN]"
LIKELY, UNLIKELY, UNLIKELY_EOS = -0.1, -2.0, -3.0


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
    dtype: torch.dtype = torch.float32
    cached_tokens: int | None = None  # the prefix-cache hit every one-token read reports
    # vLLM's --logits-processors: with ForcedTokens named, a request whose extra_args force
    # tokens generates them (``forcing_works=False``: it ignores them, as a broken engine would).
    logits_processors: list[str] = field(default_factory=list)
    forcing_works: bool = True
    running: int = 0  # generate calls in progress, and the most at once
    most_running: int = 0
    # For each score read (priority above 0) as it starts: (task prompts, score reads) running.
    read_starts: list[tuple[int, int]] = field(default_factory=list)
    _running_by_priority: dict[int, int] = field(default_factory=dict)

    async def check_health(self) -> None:
        if self.errored:
            raise RuntimeError("engine dead")

    @property
    def vllm_config(self) -> Any:
        return SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=self.max_num_seqs))

    @property
    def model_config(self) -> Any:
        return SimpleNamespace(
            max_model_len=self.max_model_len,
            logits_processors=self.logits_processors,
            dtype=self.dtype,
        )

    @property
    def renderer(self) -> Any:
        return SimpleNamespace(get_tokenizer=CharTokenizer)

    @property
    def input_processor(self) -> Any:
        return SimpleNamespace(resolve_watermarking=lambda _params: False)

    def _logprob(self, text: str, params: SamplingParams, token: int) -> float:
        """Log-probability of ``token`` after ``text`` (a prompt and the answer so far)."""
        prompt, _, written = text.partition(GEN)
        answer = self.respond(prompt + GEN, params)
        answer = answer if isinstance(answer, str) else ""
        if token == CharTokenizer.eos_token_id:
            return LIKELY if written == answer else UNLIKELY_EOS
        return LIKELY if answer.startswith(written + chr(token)) else UNLIKELY

    def _candidates(self, text: str, params: SamplingParams) -> list[int]:
        """Beam search's top tokens: the answer's next character, the end, and one wrong one."""
        prompt, _, written = text.partition(GEN)
        answer = self.respond(prompt + GEN, params)
        if isinstance(answer, BaseException):
            raise answer
        going_on = answer.startswith(written) and answer != written
        following = answer[len(written)] if going_on else "?"
        return list(dict.fromkeys([ord(following), CharTokenizer.eos_token_id, ord("?")]))

    def _step(self, text: str, params: SamplingParams, request_id: str) -> RequestOutput:
        """A one-token request asking for log-probabilities (scoring, beam search)."""
        ids = [ord(c) for c in text]
        prompt_logprobs: list[dict[int, Logprob] | None] | None = None
        if params.prompt_logprobs is not None:
            prompt_logprobs = [None] + [
                {t: Logprob(self._logprob(text[:j], params, t))} for j, t in enumerate(ids) if j
            ]
        wanted = params.logprob_token_ids or self._candidates(text, params)
        logprobs = {t: Logprob(self._logprob(text, params, t)) for t in wanted}
        best = max(logprobs, key=lambda t: logprobs[t].logprob)
        completion = CompletionOutput(0, "", [best], None, [logprobs], finish_reason="length")
        return RequestOutput(
            request_id,
            text,
            ids,
            prompt_logprobs,
            [completion],
            True,
            num_cached_tokens=None if params.skip_reading_prefix_cache else self.cached_tokens,
        )

    def _forced(self, text: str, params: SamplingParams, request_id: str) -> RequestOutput:
        """A request made to generate the tokens of its ``extra_args``: each with the
        log-probability the scripted answer gives it."""
        forced = list((params.extra_args or {})[FORCED_TOKENS])
        tokens = forced if self.forcing_works else [ord("?")] * len(forced)
        logprobs = []
        for i, token in enumerate(tokens):
            written = "".join(chr(t) for t in tokens[:i])
            logprobs.append({token: Logprob(self._logprob(text + written, params, token))})
        completion = CompletionOutput(0, "", tokens, None, logprobs, finish_reason="stop")
        ids = [ord(c) for c in text]
        return RequestOutput(request_id, text, ids, None, [completion], True)

    async def generate(
        self,
        prompt: dict[str, Any],
        params: SamplingParams,
        request_id: str,
        *,
        priority: int = 0,
        **_: Any,
    ) -> AsyncIterator[RequestOutput]:
        text = "".join(map(chr, prompt["prompt_token_ids"]))
        self.calls.append(Call(text, params, request_id, priority, prompt.get("type")))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        by_priority = self._running_by_priority
        by_priority[priority] = by_priority.get(priority, 0) + 1
        if priority:
            self.read_starts.append((by_priority.get(0, 0), by_priority[priority]))
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.append(request_id)
            raise
        finally:
            self.running -= 1
            by_priority[priority] -= 1
        if FORCED_TOKENS in (params.extra_args or {}):
            yield self._forced(text, params, request_id)
            return
        if params.logprobs is not None or params.prompt_logprobs is not None:
            yield self._step(text, params, request_id)
            return
        answer = self.respond(text, params)
        if isinstance(answer, BaseException):
            raise answer
        tokens = list(range(len(answer)))
        completion = CompletionOutput(
            0, answer, tokens, None, None, finish_reason=self.finish_reason
        )
        yield RequestOutput(request_id, text, [1] * len(text), None, [completion], True)


@dataclass
class FakeCompletions:
    """vLLM's completions handler (``state.openai_serving_completion``) as the web UI calls it:
    the engine's scripted answer to the prompt, with its finish reason and character counts."""

    engine: FakeEngine

    async def create_completion(self, request: Any, _raw_request: object) -> Any:
        params = SamplingParams(max_tokens=request.max_tokens)
        answer = self.engine.respond(request.prompt, params)
        if isinstance(answer, BaseException):
            raise answer
        choice = SimpleNamespace(text=answer, finish_reason=self.engine.finish_reason)
        prompt, completion = len(request.prompt), len(answer)
        usage = SimpleNamespace(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )
        return SimpleNamespace(choices=[choice], usage=usage)
