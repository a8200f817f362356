"""From a request to the tokenized prompts it sends: plans, windows, token budgets.

A prompt is never shortened. Prompts are tokenized here, with special-token strings (``</s>``
…) in the user's text or labels tokenized as text, and each one's tokens plus its answer budget
must fit the model's context (and ``window_tokens``). A text whose prompt does not fit is sent
as overlapping windows of whole sentences (``serving.core.windows``), every window's prompt checked
to fit; a request whose prompts could never be admitted at once is refused before its windows
are tokenized.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

from serving.core.checks import InputChecks
from serving.core.errors import InvalidInputError
from serving.core.settings import Settings
from serving.core.tasks import Decoding, PromptPlan, TaskSpec
from serving.core.windows import Window, plan_windows

__all__ = ["Planner", "Submission", "Tokenizer"]

_WINDOW_ATTEMPTS = 5  # plans of ever smaller windows before a text is refused
_JOIN_TOKENS = 8
"""Tokens a prompt may differ by from its parts counted apart (merges where they join)."""
_MERGED_SHARE = 0.9
"""The least share of a text's tokens its pieces count when counted apart (cutting a text only
keeps tokens from merging: 1.0 in practice); the windows a text needs at least are counted from
it, so a text that could never be admitted is refused before it is split."""


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer the service uses."""

    def encode(self, text: str, **kwargs: Any) -> list[int]: ...


@dataclass(frozen=True)
class Submission:
    """One prompt to send: its plan, token ids, sampling parameters and where it reads the text."""

    plan: PromptPlan
    token_ids: list[int]
    params: SamplingParams
    text: str  # the text its spans are found in: the whole text, or its window
    reference: bool = False
    window: int = 0
    offset: int = 0


class Planner:
    """Plans and tokenizes a request's prompts with the server's tokenizer, limits and bound."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        settings: Settings,
        checks: InputChecks,
        check_bound: Callable[[int, int], None],
    ) -> None:
        self._tokenizer = tokenizer
        self._settings = settings
        self.checks = checks
        self._check_bound = check_bound
        """Refuses ``(prompts, windows)`` that could never be admitted at once."""

    def prepare(
        self,
        spec: TaskSpec,
        text: str,
        checked: list[str],
        reference: bool = False,
        per_window: int = 1,
    ) -> list[Submission]:
        """Plan the prompts of a checked text and labels (in windows when the text does not fit
        one), tokenize them and size their budgets. ``per_window``: the prompts each window
        holds in flight, to refuse windows that could never be admitted before tokenizing them.
        """
        whole = Window(0, len(text))
        if len(text.encode()) <= self.checks.max_model_len:
            # A text of fewer UTF-8 bytes than the context has tokens (a byte-level BPE token
            # covers a byte at least) is cheap to read: its prompts are tokenized as they are,
            # one read each, as vLLM's own routes do, and kept if they fit.
            submissions = self._submissions(spec, text, checked, reference, whole, 0)
            if all(self._fits(s) for s in submissions):
                return submissions
        # The room the instruction, labels and answer budget leave for the text.
        empty = self._submissions(spec, "", checked, reference, Window(0, 0), 0)
        budget = min(self._limit(s) - len(s.token_ids) for s in empty)
        tokens = self._count(text)  # one read of the text: each prompt of it costs as much
        if tokens <= budget + _JOIN_TOKENS:
            submissions = self._submissions(spec, text, checked, reference, whole, 0)
            if all(self._fits(s) for s in submissions):
                return submissions
        elif budget >= 1:  # windows hold at most ``budget`` of the text's tokens each
            least = math.ceil(tokens * _MERGED_SHARE / budget)
            self._check_bound(least * per_window, least)  # before the text is split
        # Windows; a window's prompt that still does not fit (tokens merge across a cut)
        # shrinks them all.
        for _attempt in range(_WINDOW_ATTEMPTS):
            if budget < 1:
                break
            windows = plan_windows(text, budget, self._settings.window_overlap_tokens, self._count)
            self._check_bound(len(windows) * per_window, len(windows))  # before tokenizing
            submissions = [
                s
                for index, window in enumerate(windows)
                for s in self._submissions(spec, text, checked, reference, window, index)
            ]
            excess = max(len(s.token_ids) - self._limit(s) for s in submissions)
            if excess <= 0:
                return submissions
            budget -= excess
        if budget >= 1:  # the text's tokens keep growing when its sentences are joined
            message = "The text could not be split into windows that fit the model's context."
            raise InvalidInputError(message, parameter="text")
        limit = min(self._limit(s) for s in empty)
        message = (
            f"The instruction, the labels and the answer budget leave no room for the text in "
            f"a prompt of at most {limit} tokens (the model's context less the answer budget, "
            "or SEQGPT_WINDOW_TOKENS). Send fewer or shorter labels."
        )
        raise InvalidInputError(message, parameter="labels")

    def _submissions(
        self,
        spec: TaskSpec,
        text: str,
        labels: list[str],
        reference: bool,
        window: Window,
        index: int,
    ) -> list[Submission]:
        """The tokenized prompts of one window of ``text`` (all of it for the whole text)."""
        part = text[window.start : window.end]
        submissions = []
        for plan in spec.plan(part, labels, self._settings.chunk_size):
            # Special-token strings in user text stay text (never </s> as a token).
            token_ids = self._tokenizer.encode(plan.prompt, split_special_tokens=True)
            params = self.sampling_params(spec, plan.labels, reference)
            submissions.append(
                Submission(plan, token_ids, params, part, reference, index, window.start)
            )
        return submissions

    def _limit(self, submission: Submission) -> int:
        """The most prompt tokens this submission may have: the context less its answer budget,
        and at most ``window_tokens``."""
        room = self.checks.max_model_len - (submission.params.max_tokens or 0)
        return min(room, self._settings.window_tokens or room)

    def _fits(self, submission: Submission) -> bool:
        return len(submission.token_ids) <= self._limit(submission)

    def _count(self, text: str) -> int:
        """Tokens of a piece of the text, as the prompt's tokenization counts them."""
        return len(
            self._tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
        )

    def encode_label(self, label: str) -> list[int]:
        """A label's tokens, as they follow the prompt (special-token strings stay text)."""
        return self._tokenizer.encode(label, add_special_tokens=False, split_special_tokens=True)

    def sampling_params(
        self, spec: TaskSpec, labels: Sequence[str], reference: bool = False
    ) -> SamplingParams:
        """Greedy decoding with a token budget sized to the labels of one prompt.

        Reference decoding (beam search, unconstrained) gets SeqGPT's budget, the server's
        ``max_new_tokens``, except where ``span_tokens_per_label`` sizes extraction budgets.
        """
        settings, decoding = self._settings, spec.decoding
        if reference:
            decoding = Decoding(constrain_to_labels=False, per_label_tokens=None)
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
            # One output when the prompt is done, as vLLM's own non-streaming routes ask: no
            # per-token output objects for the API process to build, queue and drop.
            output_kind=RequestOutputKind.FINAL_ONLY,
            # Made for one prompt and sent once, as vLLM's own routes mark theirs: the engine
            # client then copies it shallowly instead of deep-copying it (about 0.1 ms of the API
            # process per prompt, its label list and grammar included).
            skip_clone=True,
        )
