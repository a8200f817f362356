"""A planned request's prompts on the engine: all at once, under the request's one deadline.

Batch work (``batch=True``) is submitted at batch priority (``serving.core.turns``) and each of
its prompts and score reads takes a turn of the service's batch turns first, so that it yields to
interactive work. A prompt is decoded greedily under its label constraint or by SeqGPT's beam search
(``serving.core.reference``) and parsed on its own; a scored classification reads every label
instead (``serving.core.scoring``) and decodes nothing. The first failure cancels the request's
other prompts (closing a ``generate`` iterator aborts its request in the engine) and decides the
error: the engine's and the service's errors keep their status, anything else is a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from vllm.exceptions import VLLMError
from vllm.inputs import TokensPrompt
from vllm.outputs import RequestOutput

from serving.core.errors import DeadlineExceeded, InternalError, ServingError
from serving.core.forcing import PROCESSOR
from serving.core.planning import Submission, Tokenizer
from serving.core.reference import ReferenceDecoder
from serving.core.results import Generation, TaskResult
from serving.core.scoring import ReadTurns, Scorer, normalise
from serving.core.tasks import TaskSpec
from serving.core.turns import Turns, engine_priority

if TYPE_CHECKING:
    # vLLM's engine seam, as vLLM types it (a type only: no import at run time).
    from vllm.engine.protocol import EngineClient

__all__ = ["Runner"]

logger = logging.getLogger(__name__)


class Runner:
    """Runs the submissions of one request on a vLLM engine client."""

    def __init__(
        self,
        engine: EngineClient,
        tokenizer: Tokenizer,
        timeout_s: float,
        turns: ReadTurns,
        batch_turns: Turns,
    ) -> None:
        self._engine = engine
        self.batch_turns = batch_turns
        self._timeout_s = timeout_s
        self._reference = ReferenceDecoder(engine, tokenizer)
        eos = tokenizer.eos_token_id  # type: ignore[attr-defined]
        self._scorer = Scorer.for_engine(engine, eos, turns)
        logger.info(
            "seqgpt scores: %s; %d reads at once, %d beside a task prompt",
            "forced reads (the prompt prefilled once per request)"
            if self._scorer.forced
            else "prompt reads (start the engine with --logits-processors "
            f"{PROCESSOR} for forced reads)",
            turns.idle,
            turns.busy,
        )
        logger.info(
            "seqgpt batch work: %d prompts in the engine at once, %d beside interactive work",
            batch_turns.idle,
            batch_turns.busy,
        )

    async def generations(
        self,
        spec: TaskSpec,
        submissions: Sequence[Submission],
        request_id: str,
        first: int = 0,
        *,
        batch: bool = False,
    ) -> list[Generation]:
        """Every submission decoded and parsed; engine ids ``{request_id}-{first + i}``."""
        work = [
            self._generate(spec, s, f"{request_id}-{first + i}", batch)
            for i, s in enumerate(submissions)
        ]
        return await self.gather(work, request_id)

    async def scored(
        self,
        task: str,
        submissions: Sequence[Submission],
        labels_ids: Sequence[list[int]],
        request_id: str,
        *,
        batch: bool = False,
    ) -> TaskResult:
        """Every label's score, one engine read per label (and window); the label is the best
        one. Over windows, a label's score is the mean of its windows' normalised scores."""
        labels = submissions[0].plan.labels
        windows = len(submissions)
        ids = [request_id] if windows == 1 else [f"{request_id}-w{i}" for i in range(windows)]
        turns = self.batch_turns if batch else None
        scoring = [
            self._scorer.label_logprobs(s.token_ids, labels_ids, rid, turns)
            for s, rid in zip(submissions, ids, strict=True)
        ]
        per_window = [normalise(lp) for lp in await self.gather(scoring, request_id)]
        probabilities = [sum(column) / windows for column in zip(*per_window, strict=True)]
        best = labels[max(range(len(labels)), key=probabilities.__getitem__)]
        generations = [
            Generation(
                prompt=s.plan.prompt,
                labels=labels,
                text="",
                parsed=[labels[max(range(len(labels)), key=window.__getitem__)]],
                prompt_tokens=len(s.token_ids) + sum(map(len, labels_ids)),
                completion_tokens=0,
                finish_reason="stop",
                window=s.window,
                offset=s.offset,
            )
            for s, window in zip(submissions, per_window, strict=True)
        ]
        scores = dict(zip(labels, probabilities, strict=True))
        return TaskResult(task, generations, [best], scores, windows)

    async def gather(self, work: list[Coroutine[Any, Any, Any]], request_id: str) -> list[Any]:
        """Run a request's engine work concurrently, within its deadline; the first failure
        cancels the rest and decides the error."""
        timeout = self._timeout_s
        try:
            async with asyncio.timeout(timeout), asyncio.TaskGroup() as group:
                # A TaskGroup cancels the sibling prompts when one fails; cancelling a
                # generate() iterator aborts its request in the engine.
                tasks = [group.create_task(coroutine) for coroutine in work]
        except TimeoutError:
            message = f"The request took longer than {timeout:g} s and was stopped."
            raise DeadlineExceeded(message) from None
        except BaseExceptionGroup as failed:
            # The first failure decides the response: the engine's errors keep their status
            # (vLLM's handlers map them); anything else is a bug here, never the client's 400.
            first: BaseException = failed
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            if isinstance(first, VLLMError | ServingError):
                raise first from None
            logger.error("seqgpt %s failed: %s", request_id, type(first).__name__)
            logger.debug("seqgpt %s failure", request_id, exc_info=first)
            raise InternalError("The server failed to answer this request.") from first
        return [t.result() for t in tasks]

    async def _generate(
        self, spec: TaskSpec, submission: Submission, request_id: str, batch: bool
    ) -> Generation:
        plan = submission.plan
        async with contextlib.AsyncExitStack() as turns:
            if batch:  # batch work yields to interactive work (serving.core.turns)
                await turns.enter_async_context(self.batch_turns.turn())
            turns.enter_context(self._scorer.turns.task())  # score reads yield to it
            if submission.reference:  # vLLM's beam search takes no priority
                budget = submission.params.max_tokens or 0
                completion = await self._reference.decode(submission.token_ids, budget, request_id)
            else:
                completion = await self._greedy(submission, request_id, batch)
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

    async def _greedy(self, submission: Submission, request_id: str, batch: bool) -> Any:
        # A TokensPrompt, not vLLM's rendered tokens_input: vLLM then processes the input in an
        # executor thread, not on the event loop, where a burst of 128 admitted prompts held
        # every refusal behind it (tests/e2e/test_admission.py: median 429 1.5 s against 0.4 s).
        prompt = TokensPrompt(prompt_token_ids=submission.token_ids)
        final: RequestOutput | None = None
        priority = engine_priority(batch=batch)
        generate = self._engine.generate(prompt, submission.params, request_id, priority=priority)
        async for output in generate:
            final = output
        if final is None or not final.outputs:
            raise RuntimeError(f"engine returned no output for {request_id}")
        return final.outputs[0]
