"""Task orchestration: request -> prompts -> engine -> parsers -> result. No FastAPI here.

The engine is reached only through vLLM's ``EngineClient.generate``; tests hand in a fake.
All prompts of one request (the label chunks of an extraction) are submitted at once, so vLLM's
continuous batching runs them together and its prefix cache shares the common text prefix.

Guarantees, in the order they are applied:

- The input is checked first (``serving.checks``): text, then labels (counted before any is
  validated, so a request with 40,000 labels costs one ``len``).
- Prompts are tokenized here, with special-token strings (``</s>`` …) in the user's text or
  labels tokenized as text: a user cannot end or forge the prompt with a special token. The
  engine receives the token ids. A prompt is never shortened: a text whose prompt does not fit
  (its tokens plus its answer budget over the model's context, or over ``window_tokens``) is
  sent as overlapping windows of whole sentences (``serving.windows``), every window's prompt
  checked to fit; their answers are combined by the task's combiner.
- At most ``max_inflight`` task prompts are in flight; a request that does not fit is refused
  at once with ``Overloaded`` (429), never queued without bound. A request with more prompts
  than ``max_inflight`` (a long text's windows times its label chunks) could never fit: it is a
  413 (``TooLarge``), not a 429 to retry.
- A request running past ``request_timeout_s`` raises ``DeadlineExceeded`` (504). Cancellation
  (timeout, client disconnect, a failed sibling prompt) closes the ``generate`` iterators, and
  vLLM aborts their requests in the engine.
- A generation that stopped for length is parsed as incomplete (its unfinished last value is
  dropped) and the result says ``truncated``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from vllm.exceptions import VLLMError
from vllm.inputs import TokensPrompt
from vllm.outputs import RequestOutput
from vllm.sampling_params import SamplingParams, StructuredOutputsParams

from serving.checks import InputChecks
from serving.errors import (
    DeadlineExceeded,
    InternalError,
    InvalidInputError,
    Overloaded,
    ServingError,
    TooLarge,
)
from serving.settings import Settings
from serving.tasks import TASKS, PromptPlan, TaskSpec
from serving.windows import Window, plan_windows

__all__ = ["Generation", "SeqGPTService", "TaskResult"]

logger = logging.getLogger(__name__)


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer the service uses."""

    def encode(self, text: str, **kwargs: Any) -> list[int]: ...


@dataclass(frozen=True)
class Generation:
    """One prompt's generation and its parse."""

    prompt: str
    labels: list[str]
    text: str
    parsed: Any
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    window: int = 0
    """The window of the text this prompt read (0: the first, or the whole text)."""
    offset: int = 0
    """Where that window starts in the text: ``parsed`` holds offsets in the window."""

    @property
    def truncated(self) -> bool:
        """Whether the generation stopped at its token budget rather than at its end."""
        return self.finish_reason == "length"


@dataclass(frozen=True)
class TaskResult:
    """All generations of one task request, in prompt order, and their combined answer."""

    task: str
    generations: list[Generation] = field(default_factory=list)
    value: Any = None
    windows: int = 1
    """How many windows of the text were sent (1: the whole text in one prompt per chunk)."""

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens summed over the request's prompts."""
        return sum(g.prompt_tokens for g in self.generations)

    @property
    def completion_tokens(self) -> int:
        """Generated tokens summed over the request's prompts."""
        return sum(g.completion_tokens for g in self.generations)

    @property
    def truncated(self) -> bool:
        """Whether any prompt's generation stopped at its token budget."""
        return any(g.truncated for g in self.generations)


@dataclass(frozen=True)
class _Submission:
    plan: PromptPlan
    token_ids: list[int]
    params: SamplingParams
    text: str  # the text its spans are found in: the whole text, or its window
    window: int = 0
    offset: int = 0


class SeqGPTService:
    """Runs SeqGPT tasks on a vLLM engine client."""

    def __init__(
        self,
        engine: Any,
        tokenizer: Tokenizer,
        settings: Settings,
        *,
        max_model_len: int,
        max_inflight: int,
    ) -> None:
        self._engine = engine
        self._tokenizer = tokenizer
        self._settings = settings
        self._max_inflight = max_inflight
        self._inflight = 0
        special_tokens = getattr(tokenizer, "all_special_tokens", ())
        self.checks = InputChecks(settings, special_tokens, max_model_len)

    @property
    def inflight(self) -> int:
        """Task prompts admitted and not finished yet."""
        return self._inflight

    @property
    def max_batch_items(self) -> int:
        """The most texts one batch request may hold."""
        return self._settings.max_batch_items

    @property
    def max_inflight(self) -> int:
        """The most task prompts admitted at once."""
        return self._max_inflight

    async def classify(
        self, text: str, labels: str | Sequence[str], *, multi_label: bool = False
    ) -> TaskResult:
        """Classify ``text`` into one label of ``labels`` (or several, with ``multi_label``)."""
        return await self.run("classify_multi" if multi_label else "classify", text, labels)

    async def extract(self, text: str, labels: str | Sequence[str]) -> TaskResult:
        """Extract the spans of ``text`` for each field in ``labels``."""
        return await self.run("extract", text, labels)

    async def run(
        self, task: str, text: str, labels: str | Sequence[str], *, request_id: str | None = None
    ) -> TaskResult:
        """Run one registered task: all its prompts concurrently, each parsed on its own.

        The engine request ids start with ``request_id`` (the client's X-Request-Id, when sent);
        a random part follows, since two clients may send the same id.
        """
        spec = TASKS[task]
        submissions = self._prepare(spec, text, labels)
        request_id = f"{request_id or 'seqgpt-' + task}-{uuid.uuid4().hex[:12]}"
        with self._admitted(len(submissions)):
            generations = await self._generate_all(spec, submissions, request_id)
        windows = submissions[-1].window + 1
        return TaskResult(task, generations, spec.combine(generations), windows)

    def _prepare(self, spec: TaskSpec, text: str, labels: str | Sequence[str]) -> list[_Submission]:
        """Check the input, plan the prompts (in windows when the text does not fit one),
        tokenize them and size their budgets."""
        self.checks.text(text)
        checked = self.checks.labels(labels)
        submissions = self._submissions(spec, text, checked, Window(0, len(text)), 0)
        if all(self._fits(s) for s in submissions):
            return submissions
        # Windows sized from the room the instruction, labels and answer budget leave; a
        # window's prompt that still does not fit (tokens merge across a cut) shrinks them all.
        empty = self._submissions(spec, "", checked, Window(0, 0), 0)
        budget = min(self._limit(s) - len(s.token_ids) for s in empty)
        for _attempt in range(3):
            if budget < 1:
                break
            windows = plan_windows(text, budget, self._settings.window_overlap_tokens, self._count)
            self._check_windows(len(windows), len(empty))
            submissions = [
                s
                for index, window in enumerate(windows)
                for s in self._submissions(spec, text, checked, window, index)
            ]
            excess = max(len(s.token_ids) - self._limit(s) for s in submissions)
            if excess <= 0:
                return submissions
            budget -= excess
        limit = min(self._limit(s) for s in empty)
        message = (
            f"The instruction, the labels and the answer budget leave no room for the text in "
            f"a prompt of at most {limit} tokens (the model's context less the answer budget, "
            "or SEQGPT_WINDOW_TOKENS). Send fewer or shorter labels."
        )
        raise InvalidInputError(message, parameter="labels")

    def _submissions(
        self, spec: TaskSpec, text: str, labels: list[str], window: Window, index: int
    ) -> list[_Submission]:
        """The tokenized prompts of one window of ``text`` (all of it for the whole text)."""
        part = text[window.start : window.end]
        submissions = []
        for plan in spec.plan(part, labels, self._settings.chunk_size):
            # Special-token strings in user text stay text (never </s> as a token).
            token_ids = self._tokenizer.encode(plan.prompt, split_special_tokens=True)
            params = self.sampling_params(spec, plan.labels)
            submissions.append(_Submission(plan, token_ids, params, part, index, window.start))
        return submissions

    def _limit(self, submission: _Submission) -> int:
        """The most prompt tokens this submission may have: the context less its answer budget,
        and at most ``window_tokens``."""
        room = self.checks.max_model_len - (submission.params.max_tokens or 0)
        return min(room, self._settings.window_tokens or room)

    def _fits(self, submission: _Submission) -> bool:
        return len(submission.token_ids) <= self._limit(submission)

    def _count(self, text: str) -> int:
        """Tokens of a piece of the text, as the prompt's tokenization counts them."""
        return len(
            self._tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
        )

    def _check_windows(self, windows: int, chunks: int) -> None:
        """Refuse a request whose prompts could never be admitted together (413, not 429)."""
        if windows * chunks > self._max_inflight:
            message = (
                f"The text needs {windows * chunks} prompts ({windows} windows of "
                f"{chunks} prompt{'s' if chunks > 1 else ''} each); this server runs at most "
                f"{self._max_inflight} prompts of a request at once. Send a shorter text or "
                "fewer labels."
            )
            raise TooLarge(message, param="text")

    @contextmanager
    def _admitted(self, prompts: int) -> Iterator[None]:
        if self._inflight + prompts > self._max_inflight:
            raise Overloaded(
                f"The server is at its limit of {self._max_inflight} prompts in flight; "
                "retry in a moment."
            )
        self._inflight += prompts
        try:
            yield
        finally:
            self._inflight -= prompts

    async def _generate_all(
        self, spec: TaskSpec, submissions: list[_Submission], request_id: str
    ) -> list[Generation]:
        timeout = self._settings.request_timeout_s
        try:
            async with asyncio.timeout(timeout), asyncio.TaskGroup() as group:
                # A TaskGroup cancels the sibling prompts when one fails; cancelling a
                # generate() iterator aborts its request in the engine.
                tasks = [
                    group.create_task(self._generate(spec, s, f"{request_id}-{i}"))
                    for i, s in enumerate(submissions)
                ]
        except TimeoutError:
            message = f"The request took longer than {timeout:g} s and was stopped."
            raise DeadlineExceeded(message) from None
        except BaseExceptionGroup as failed:
            # The first failure decides the response: the engine's errors keep their status
            # (vLLM's handlers map them); anything else is a bug here, never the client's 400.
            first = failed.exceptions[0]
            if isinstance(first, VLLMError | ServingError):
                raise first from None
            logger.error("seqgpt %s failed: %s", request_id, type(first).__name__)
            logger.debug("seqgpt %s failure", request_id, exc_info=first)
            raise InternalError("The server failed to answer this request.") from first
        return [t.result() for t in tasks]

    async def _generate(
        self, spec: TaskSpec, submission: _Submission, request_id: str
    ) -> Generation:
        plan = submission.plan
        prompt = TokensPrompt(prompt_token_ids=submission.token_ids)
        final: RequestOutput | None = None
        async for output in self._engine.generate(prompt, submission.params, request_id):
            final = output
        if final is None or not final.outputs:
            raise RuntimeError(f"engine returned no output for {request_id}")
        completion = final.outputs[0]
        finish_reason = completion.finish_reason
        complete = finish_reason != "length"
        return Generation(
            prompt=plan.prompt,
            labels=plan.labels,
            text=completion.text,
            parsed=spec.parse(completion.text, plan.labels, submission.text, complete),
            prompt_tokens=len(submission.token_ids),
            completion_tokens=len(completion.token_ids),
            finish_reason=finish_reason,
            window=submission.window,
            offset=submission.offset,
        )

    def sampling_params(self, spec: TaskSpec, labels: Sequence[str]) -> SamplingParams:
        """Greedy decoding with a token budget sized to the labels of one prompt."""
        settings, decoding = self._settings, spec.decoding
        if decoding.constrain_to_labels:
            # The grammar ends generation once a label is complete, so a generous budget costs
            # nothing; the constrained path may spell a label in more tokens than its usual
            # tokenisation, but never in more than its UTF-8 bytes (byte-level BPE).
            budget = max(len(label.encode()) for label in labels) + decoding.slack_tokens
        else:
            # Precedence: server setting, else the task's default; None means the full budget.
            per_label = decoding.per_label_tokens
            if spec.name == "extract":
                per_label = settings.span_tokens_per_label
            budget = settings.max_new_tokens
            if per_label is not None:
                sizes = [len(self._tokenizer.encode(lb, add_special_tokens=False)) for lb in labels]
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
