"""Task orchestration: request -> prompts -> engine -> parsers -> result. No FastAPI here.

The engine is reached only through vLLM's ``EngineClient.generate``; tests hand in a fake.
All prompts of one request (the label chunks of an extraction) are submitted at once, so vLLM's
continuous batching runs them together and its prefix cache shares the common text prefix.

Guarantees, in the order they are applied:

- The input is checked first (``serving.core.checks``): text, then labels (counted before any is
  validated, so a request with 40,000 labels costs one ``len``).
- Prompts are planned and tokenized by ``serving.core.planning``: special-token strings in the
  user's text or labels stay text, the engine receives token ids, and a prompt is never
  shortened: a text that does not fit one prompt is sent as overlapping windows of whole
  sentences (``serving.core.windows``); their answers are combined by the task's combiner (scores:
  the mean of the windows' normalised scores).
- Admission comes before planning. A request's prompts per window (its label chunks, times the
  beams or labels its option reads) are counted from its labels alone, and that many prompts
  are taken from the ``max_inflight`` bound before its text is planned or tokenized: a request
  that does not fit now is refused at once with ``Overloaded`` (429), one that could never fit
  with ``TooLarge`` (413), so refusing costs no tokenization. Once planned, its hold grows to
  its windows' count (429 or 413 then, if they do not fit); a long text that needs more
  windows than could ever be admitted is refused once its tokens are counted (one read of the
  text), before it is split or any prompt of it is tokenized.
- Each request is for a ``Who`` (its tenant, weight and level, from the HTTP layer): the bound
  is shared by weight among the active tenants, and batch work yields to interactive work
  (``serving.core.admission``); a batch request's prompts take turns in the engine (fewer while
  an interactive request is held) and go at a lower engine priority (``serving.core.turns``).
- Planning never holds the event loop for long: a request that tokenizes more than
  ``_INLINE_PLAN_CHARS`` characters (its text once per prompt of a window) is planned in the
  service's planning threads (Hugging Face's fast tokenizers release the GIL while they encode),
  so ``/health`` and every other request are answered meanwhile. A client that leaves while
  its planning is queued takes it off the queue.
- The engine work is ``serving.core.running``'s ``Runner``: a request running past
  ``request_timeout_s`` raises ``DeadlineExceeded`` (504). Cancellation
  (timeout, client disconnect, a failed sibling prompt) closes the ``generate`` iterators, and
  vLLM aborts their requests in the engine.
- A generation that stopped for length is parsed as incomplete (its unfinished last value is
  dropped) and the result says ``truncated``.

Two options change how a request is answered: ``scores`` ranks every label of a classification
by the model's probability of answering it (``serving.core.scoring``; nothing is decoded), and
``decoding="reference"`` decodes with SeqGPT's official beam search (``serving.core.reference``)
instead of greedy, label-constrained decoding.

An extraction may send a schema tree instead of labels (``run_schema``, ``serving.core.schema``):
the whole tree's prompts are admitted up front from its counts (``schema_max_entities`` per
field, level by level), then each level's extractions run at once under the request's one
deadline, through the same planning and ``Runner`` as any extraction.
"""

from __future__ import annotations

import asyncio
import functools
import math
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from vllm.sampling_params import SamplingParams

from serving.core.admission import Admission, Held
from serving.core.checks import InputChecks
from serving.core.errors import InvalidInputError, Overloaded
from serving.core.planning import Planner, Submission, Tokenizer
from serving.core.reference import BEAM_WIDTH
from serving.core.results import Generation, TaskResult
from serving.core.running import Runner
from serving.core.schema import Schema, parse_schema, prompts_per_window, walk
from serving.core.scoring import CPU_SCORE_READS, CPU_SCORE_READS_BUSY, ReadTurns
from serving.core.settings import Settings
from serving.core.tasks import TASKS, TaskSpec
from serving.core.tenants import Who
from serving.core.turns import CPU_BATCH_PROMPTS, CPU_BATCH_PROMPTS_BUSY, Turns, batch_turns

if TYPE_CHECKING:
    # vLLM's engine seam, as vLLM types it (a type only: no import at run time).
    from vllm.engine.protocol import EngineClient

__all__ = ["DECODINGS", "DecodingMode", "SeqGPTService"]

_INLINE_PLAN_CHARS = 4000
"""Planning that tokenizes at most this many characters runs inline (a few milliseconds at most
with a fast tokenizer); more goes to the planning threads."""
_PLANNING_THREADS = 2

DecodingMode = Literal["fast", "reference"]
DECODINGS: tuple[str, ...] = get_args(DecodingMode)


class SeqGPTService:
    """Runs SeqGPT tasks on a vLLM engine client."""

    def __init__(
        self,
        engine: EngineClient,
        tokenizer: Tokenizer,
        settings: Settings,
        *,
        max_model_len: int,
        max_inflight: int,
        score_turns: ReadTurns | None = None,
        batch: Turns | None = None,
    ) -> None:
        self._settings = settings
        self._admission = Admission(max_inflight, settings.schema_max_entities)
        turns = score_turns or ReadTurns(busy=CPU_SCORE_READS_BUSY, idle=CPU_SCORE_READS)
        batch = batch or Turns(busy=CPU_BATCH_PROMPTS_BUSY, idle=CPU_BATCH_PROMPTS)
        self._runner = Runner(engine, tokenizer, settings.request_timeout_s, turns, batch)
        special_tokens = getattr(tokenizer, "all_special_tokens", ())
        self.checks = InputChecks(settings, special_tokens, max_model_len)
        self.planner = Planner(tokenizer, settings, self.checks, self._admission.check_bound)
        self._planning = ThreadPoolExecutor(_PLANNING_THREADS, thread_name_prefix="seqgpt-plan")

    @classmethod
    def for_engine(
        cls, engine: EngineClient, settings: Settings, *, processes: int = 1
    ) -> SeqGPTService:
        """The service around a vLLM engine client, with its tokenizer, context and bound.

        The bound (``max_inflight``, default twice the engine's ``max_num_seqs``) is the server's:
        with ``processes`` API server processes sharing the engine, each admits its share,
        ``bound // processes``. A share below the prompts of an extraction with ``max_labels``
        labels is a ``ValueError`` (such requests could never run).
        """
        max_seqs = engine.vllm_config.scheduler_config.max_num_seqs
        total = settings.max_inflight or 2 * max_seqs
        max_inflight = total // processes
        largest_request = math.ceil(settings.max_labels / settings.chunk_size)
        if max_inflight < largest_request:
            bound = f"SEQGPT_MAX_INFLIGHT={total}"
            if processes > 1:
                bound += f" split over {processes} API processes ({max_inflight} each)"
            raise ValueError(
                f"{bound} is below the {largest_request} prompts of one request with "
                "SEQGPT_MAX_LABELS labels: raise it or lower SEQGPT_MAX_LABELS."
            )
        # vLLM types it TokenizerLike, whose encode names fewer keywords than the Hugging Face
        # tokenizer it is (split_special_tokens, which keeps "</s>" in a text text).
        tokenizer = cast("Tokenizer", engine.renderer.get_tokenizer())
        return cls(
            engine,
            tokenizer,
            settings,
            max_model_len=engine.model_config.max_model_len,
            max_inflight=max_inflight,
            score_turns=ReadTurns.for_device(settings, max_seqs),
            batch=batch_turns(
                settings.max_batch_prompts, settings.max_batch_prompts_busy, max_inflight
            ),
        )

    @property
    def inflight(self) -> int:
        """Task prompts admitted and not finished yet."""
        return self._admission.inflight

    def refusal_now(self, who: Who | None = None) -> Overloaded | None:
        """The 429 a task request for ``who`` gets now, whatever its body (no room for the one
        prompt each needs at least), else None. The gate asks it before a body is parsed."""
        return self._admission.refusal_now(who)

    def holding(self) -> dict[str, dict[str, int]]:
        """Task prompts held now per tenant and level (``interactive``, ``batch``)."""
        return self._admission.holding()

    @property
    def batch_turns(self) -> Turns:
        """Batch prompts' turns in the engine (``serving.core.turns``)."""
        return self._runner.batch_turns

    @contextmanager
    def _held(self, prompts: int, who: Who | None, param: str = "text") -> Iterator[Held]:
        """``Admission.held``; an interactive request's hold also keeps batch work to its busy
        turns until it ends."""
        who = who or Who()
        with self._admission.held(prompts, who, param) as held:
            if who.batch:
                yield held
                return
            with self._runner.batch_turns.busy_while():
                yield held

    @property
    def max_batch_items(self) -> int:
        """The most texts one batch request may hold."""
        return self._settings.max_batch_items

    @property
    def max_inflight(self) -> int:
        """The most task prompts admitted at once."""
        return self._admission.max_inflight

    async def classify(
        self, text: str, labels: str | Sequence[str], *, multi_label: bool = False
    ) -> TaskResult:
        """Classify ``text`` into one label of ``labels`` (or several, with ``multi_label``)."""
        return await self.run("classify_multi" if multi_label else "classify", text, labels)

    async def extract(self, text: str, labels: str | Sequence[str]) -> TaskResult:
        """Extract the spans of ``text`` for each field in ``labels``."""
        return await self.run("extract", text, labels)

    async def run(
        self,
        task: str,
        text: str,
        labels: str | Sequence[str],
        *,
        request_id: str | None = None,
        scores: bool = False,
        decoding: str = "fast",
        who: Who | None = None,
    ) -> TaskResult:
        """Run one registered task for ``who`` (unset: the default tenant's interactive work):
        all its prompts concurrently, each parsed on its own.

        The engine request ids start with ``request_id`` (the client's X-Request-Id, when sent);
        a random part follows, since two clients may send the same id.
        """
        self.check_options(task, scores, decoding)
        self.checks.text(text)  # the text's error before the labels'
        checked = self.checks.labels(labels)
        return await self.run_checked(task, text, checked, request_id, scores, decoding, who)

    async def run_checked(
        self,
        task: str,
        text: str,
        labels: list[str],
        request_id: str | None,
        scores: bool,
        decoding: str,
        who: Who | None = None,
    ) -> TaskResult:
        """``run`` of a checked text (``checks.text``), labels (``checks.labels``) and options
        (``check_options``): a batch checks its labels and options once for all its texts."""
        spec = TASKS[task]
        reference = decoding == "reference"
        per_window = self._per_window(spec, labels, scores, reference)
        batch = who is not None and who.batch
        with self._held(per_window, who) as held:  # 413 or 429 before any tokenization
            submissions = await self._plan(spec, text, labels, reference, per_window)
            windows = submissions[-1].window + 1
            self._admission.hold(held, per_window * windows, windows)
            request_id = f"{request_id or 'seqgpt-' + task}-{uuid.uuid4().hex[:12]}"
            if scores:
                labels_ids = [self.planner.encode_label(x) for x in submissions[0].plan.labels]
                return await self._runner.scored(
                    task, submissions, labels_ids, request_id, batch=batch
                )
            generations = await self._runner.generations(spec, submissions, request_id, batch=batch)
        return TaskResult(task, generations, spec.combine(generations), windows=windows)

    def check_schema(self, raw: Any, decoding: str = "fast", labels: Any = None) -> Schema:
        """The checked schema tree of an extraction (400s name ``schema``: labels sent too,
        reference decoding, a tree ``serving.core.schema`` refuses)."""
        if labels is not None:
            raise InvalidInputError("Send labels or a schema, not both.", parameter="schema")
        self.check_options("extract", False, decoding)
        if decoding != "fast":
            message = "A schema is extracted with fast decoding only; leave decoding unset."
            raise InvalidInputError(message, parameter="decoding")
        settings = self._settings
        return parse_schema(
            raw,
            self.checks,
            max_depth=settings.schema_max_depth,
            max_children=settings.schema_max_children,
        )

    def schema_or_labels(
        self, labels: str | Sequence[str] | None, raw: Any, decoding: str
    ) -> Schema | str | Sequence[str]:
        """What an extraction asks: its checked schema, else its labels, unchecked yet
        (neither sent: a 400 naming ``labels``)."""
        if raw is not None:
            return self.check_schema(raw, decoding, labels)
        if labels is None:
            message = "The field 'labels' is required. An extraction may send a schema instead."
            raise InvalidInputError(message, parameter="labels")
        return labels

    def schema_prompts(self, schema: Schema) -> int:
        """The most prompts per window of the text a request with ``schema`` sends."""
        settings = self._settings
        return prompts_per_window(schema, settings.chunk_size, settings.schema_max_entities)

    def check_schema_room(self, schema: Schema, who: Who | None = None) -> None:
        """``check_room`` for a schema tree: 413 or 429 from its count alone."""
        self._admission.check_room(self.schema_prompts(schema), who, param="schema")

    async def run_schema(
        self, text: str, schema: Schema, *, request_id: str | None = None, who: Who | None = None
    ) -> TaskResult:
        """Extract ``schema``'s tree from ``text`` (``serving.core.schema``): the whole tree's
        prompts admitted up front from counts, each level's extractions run at once."""
        spec = TASKS["extract"]
        self.checks.text(text)
        per_window = self.schema_prompts(schema)
        request_id = f"{request_id or 'seqgpt-extract'}-{uuid.uuid4().hex[:12]}"
        sent: list[int] = []  # the prompts planned so far, and the text's windows

        async def extract(labels: list[str]) -> tuple[Any, list[Generation]]:
            submissions = await self._plan(spec, text, labels, False, per_window)
            windows = submissions[-1].window + 1
            first = not sent
            sent.append(len(submissions))
            grown = per_window * windows if first else max(held.prompts, sum(sent))
            self._admission.hold(held, grown, windows)
            first_id = sum(sent) - len(submissions)
            generations = await self._runner.generations(
                spec, submissions, request_id, first_id, batch=who is not None and who.batch
            )
            return spec.combine(generations), generations

        def gather(work: list[Coroutine[Any, Any, Any]]) -> Any:
            return self._runner.gather(work, request_id)

        with self._held(per_window, who, param="schema") as held:  # 413/429 up front
            limit = self._settings.schema_max_entities
            tree = walk(
                schema, schema.fields, extract, gather, max_entities=limit, valid=self._valid
            )
            [(nested, generations)] = await self._runner.gather([tree], request_id)  # one deadline
        windows = max(g.window for g in generations[: sent[0]]) + 1
        return TaskResult("extract", generations, nested, windows=windows)

    def _valid(self, labels: list[str]) -> bool:
        """Whether composed labels pass the label checks (else their entity is not expanded)."""
        try:
            self.checks.labels(labels)
        except InvalidInputError:
            return False
        return True

    def check_room(
        self, task: str, labels: list[str], scores: bool, decoding: str, who: Who | None = None
    ) -> None:
        """Refuse a request with ``labels`` that could never be admitted (413), or that the
        bound has no room for now (429), from counts alone: a batch asks this once, so a batch
        none of whose texts could start is one refusal."""
        per_window = self._per_window(TASKS[task], labels, scores, decoding == "reference")
        self._admission.check_room(per_window, who)

    def _per_window(self, spec: TaskSpec, labels: list[str], scores: bool, reference: bool) -> int:
        """The prompts one window of a request holds in flight: a scored classification reads
        every label, a reference prompt keeps up to BEAM_WIDTH sequences in the engine."""
        if scores:
            return len(labels)
        prompts = len(spec.plan("", labels, self._settings.chunk_size))
        return prompts * BEAM_WIDTH if reference else prompts

    async def _plan(
        self, spec: TaskSpec, text: str, labels: list[str], reference: bool, per_window: int
    ) -> list[Submission]:
        """The request's submissions, planned inline when that is cheap, else in a planning
        thread (cancelled while it waits there if the request is)."""
        plan = functools.partial(self.planner.prepare, spec, text, labels, reference, per_window)
        if len(text) * per_window <= _INLINE_PLAN_CHARS:
            return plan()
        return await asyncio.get_running_loop().run_in_executor(self._planning, plan)

    @staticmethod
    def check_options(task: str, scores: bool, decoding: str) -> None:
        """Refuse an unknown decoding, and scores where they do not apply."""
        if decoding not in DECODINGS:
            message = f"Unknown decoding {decoding!r}; use one of {', '.join(DECODINGS)}."
            raise InvalidInputError(message, parameter="decoding")
        if scores and task != "classify":
            message = "Scores rank the labels of a single-label classification, not multi_label."
            raise InvalidInputError(message, parameter="scores")
        if scores and decoding != "fast":
            message = "With scores the label is the best-scored one and nothing is decoded; "
            raise InvalidInputError(message + "leave decoding unset.", parameter="decoding")

    def sampling_params(
        self, spec: TaskSpec, labels: Sequence[str], reference: bool = False
    ) -> SamplingParams:
        """The sampling parameters of one prompt (``Planner.sampling_params``)."""
        return self.planner.sampling_params(spec, labels, reference)
