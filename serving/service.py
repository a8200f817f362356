"""Task orchestration: request -> prompts -> engine -> parsers -> result. No FastAPI here.

The engine is reached only through vLLM's ``EngineClient.generate``; tests hand in a fake.
All prompts of one request (the label chunks of an extraction) are submitted at once, so vLLM's
continuous batching runs them together and its prefix cache shares the common text prefix.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vllm.outputs import RequestOutput
from vllm.sampling_params import SamplingParams, StructuredOutputsParams

from prompts import LabelError
from serving.errors import InvalidInputError
from serving.settings import Settings
from serving.tasks import TASKS, PromptPlan, TaskSpec

__all__ = ["Generation", "SeqGPTService", "TaskResult"]


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer the service uses."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


@dataclass(frozen=True)
class Generation:
    """One prompt's generation and its parse."""

    prompt: str
    labels: list[str]
    text: str
    parsed: Any
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class TaskResult:
    """All generations of one task request, in prompt order."""

    task: str
    generations: list[Generation] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens summed over the request's prompts."""
        return sum(g.prompt_tokens for g in self.generations)

    @property
    def completion_tokens(self) -> int:
        """Generated tokens summed over the request's prompts."""
        return sum(g.completion_tokens for g in self.generations)


class SeqGPTService:
    """Runs SeqGPT tasks on a vLLM engine client."""

    def __init__(self, engine: Any, tokenizer: Tokenizer, settings: Settings) -> None:
        self._engine = engine
        self._tokenizer = tokenizer
        self._settings = settings

    async def classify(
        self, text: str, labels: Sequence[str], *, multi_label: bool = False
    ) -> TaskResult:
        """Classify ``text`` into one label of ``labels`` (or several, with ``multi_label``)."""
        return await self.run("classify_multi" if multi_label else "classify", text, labels)

    async def extract(self, text: str, labels: Sequence[str]) -> TaskResult:
        """Extract the spans of ``text`` for each field in ``labels``."""
        return await self.run("extract", text, labels)

    async def run(self, task: str, text: str, labels: Sequence[str]) -> TaskResult:
        """Run one registered task: all its prompts concurrently, each parsed on its own."""
        spec = TASKS[task]
        self._check_limits(text, labels)
        try:
            plans = spec.plan(text, labels, self._settings.chunk_size)
        except LabelError as exc:
            raise InvalidInputError(str(exc), parameter="labels") from exc
        request_id = f"seqgpt-{task}-{uuid.uuid4().hex}"
        # A TaskGroup cancels the sibling prompts when one fails; cancelling a generate()
        # iterator aborts its request in the engine.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._generate(spec, plan, text, f"{request_id}-{i}"))
                    for i, plan in enumerate(plans)
                ]
        except BaseExceptionGroup as failed:
            # The first failure decides the response (vLLM's handlers map it to its status).
            raise failed.exceptions[0] from None
        return TaskResult(task, [t.result() for t in tasks])

    def _check_limits(self, text: str, labels: Sequence[str]) -> None:
        if not text.strip():
            raise InvalidInputError("text must not be empty or blank", parameter="text")
        if len(text) > self._settings.max_text_chars:
            raise InvalidInputError(
                f"text has {len(text)} characters; the limit is {self._settings.max_text_chars}",
                parameter="text",
            )
        if len(labels) > self._settings.max_labels:
            raise InvalidInputError(
                f"{len(labels)} labels given; the limit is {self._settings.max_labels}",
                parameter="labels",
            )

    async def _generate(
        self, spec: TaskSpec, plan: PromptPlan, text: str, request_id: str
    ) -> Generation:
        params = self.sampling_params(spec, plan.labels)
        final: RequestOutput | None = None
        async for output in self._engine.generate(plan.prompt, params, request_id):
            final = output
        if final is None or not final.outputs:
            raise RuntimeError(f"engine returned no output for {request_id}")
        completion = final.outputs[0]
        return Generation(
            prompt=plan.prompt,
            labels=plan.labels,
            text=completion.text,
            parsed=spec.parse(completion.text, plan.labels, text),
            prompt_tokens=len(final.prompt_token_ids or ()),
            completion_tokens=len(completion.token_ids),
        )

    def sampling_params(self, spec: TaskSpec, labels: Sequence[str]) -> SamplingParams:
        """Greedy decoding with a token budget sized to the labels of one prompt."""
        settings, decoding = self._settings, spec.decoding
        # Precedence: server setting, else the task's default.
        per_label = decoding.per_label_tokens
        if spec.name == "extract" and settings.span_tokens_per_label is not None:
            per_label = settings.span_tokens_per_label
        if decoding.constrain_to_labels:
            # The grammar ends generation once a label is complete, so a generous budget costs
            # nothing; the constrained path may spell a label in more tokens than its usual
            # tokenisation, but never in more than its UTF-8 bytes (byte-level BPE).
            budget = max(len(label.encode()) for label in labels) + decoding.slack_tokens
        else:
            sizes = [
                len(self._tokenizer.encode(label, add_special_tokens=False)) for label in labels
            ]
            budget = sum(size + per_label for size in sizes) + decoding.slack_tokens
        structured = None
        if decoding.constrain_to_labels and settings.constrain_classification:
            structured = StructuredOutputsParams(choice=list(labels))
        return SamplingParams(
            temperature=0.0,
            max_tokens=min(budget, settings.max_new_tokens),
            structured_outputs=structured,
            skip_special_tokens=True,
        )
