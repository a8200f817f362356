"""The task registry: one table from task name to prompt plan, parser, combiner and decoding.

A combiner gets every generation of the request, each tagged with its window of the text
(``Generation.window``, ``Generation.offset``); the rules for more than one window are in
``serving.core.windows``.

The service reads only this table, so a new task (or a new decoding policy such as beam search)
is one entry here, not a new code path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from parsers import Extraction, parse_classification, parse_extraction_detailed
from prompts import (
    build_classify_prompt,
    build_extract_prompts,
    chunk_labels,
    split_labels,
    validate_labels,
)
from serving.core.results import Generation, TaskResult
from serving.core.windows import merge_extractions, union_labels, vote_label

__all__ = ["TASKS", "Decoding", "PromptPlan", "TaskSpec", "read_completion", "read_extract_prompt"]


@dataclass(frozen=True)
class PromptPlan:
    """One prompt to send and the labels it asks about."""

    prompt: str
    labels: list[str]


@dataclass(frozen=True)
class Decoding:
    """How a task decodes: greedy, with a token budget sized from its labels.

    The budget for a prompt is ``max(label UTF-8 bytes) + slack`` when the output is constrained to
    one label; else ``sum(label tokens + per_label_tokens) + slack``, or the server's whole
    ``max_new_tokens`` when ``per_label_tokens`` is None; never above ``max_new_tokens``.
    """

    constrain_to_labels: bool
    per_label_tokens: int | None
    slack_tokens: int = 2


@dataclass(frozen=True)
class TaskSpec:
    """A task: how to plan its prompts, parse each generation, combine them, and decode."""

    name: str
    plan: Callable[[str, Sequence[str], int], list[PromptPlan]]
    parse: Callable[[str, Sequence[str], str, bool], Any]
    combine: Callable[[Sequence[Generation]], Any]
    decoding: Decoding


def _plan_classify(text: str, labels: Sequence[str], _chunk_size: int) -> list[PromptPlan]:
    labels = validate_labels(labels)
    return [PromptPlan(build_classify_prompt(text, labels), list(labels))]


def _plan_extract(text: str, labels: Sequence[str], chunk_size: int) -> list[PromptPlan]:
    labels = validate_labels(labels)
    prompts = build_extract_prompts(text, labels, chunk_size)
    return [
        PromptPlan(p, c) for p, c in zip(prompts, chunk_labels(labels, chunk_size), strict=True)
    ]


def _parse_classify(generated: str, labels: Sequence[str], _text: str, complete: bool) -> list[str]:
    return parse_classification(generated, labels, complete=complete)


def _parse_extract(generated: str, labels: Sequence[str], text: str, complete: bool) -> Extraction:
    return parse_extraction_detailed(generated, labels, text, complete=complete)


def _per_window(generations: Sequence[Generation]) -> list[list[str]]:
    """The labels each window's (one) classification prompt named, in window order."""
    named: list[list[str]] = [g.parsed for g in sorted(generations, key=lambda g: g.window)]
    return named


def _combine_classify(generations: Sequence[Generation]) -> list[str]:
    """The labels named by the one classification prompt; over windows, their majority vote."""
    return vote_label(_per_window(generations))


def _combine_classify_multi(generations: Sequence[Generation]) -> list[str]:
    """The labels named by the one prompt; over windows, every label any of them named."""
    return union_labels(_per_window(generations))


def _combine_extract(generations: Sequence[Generation]) -> Extraction:
    """Every chunk's fields in label order, every window's spans shifted into the text and kept
    once; spans inside a longer span of another dropped."""
    return merge_extractions([(g.offset, g.parsed) for g in generations])


TASKS: dict[str, TaskSpec] = {
    "classify": TaskSpec(
        "classify", _plan_classify, _parse_classify, _combine_classify, Decoding(True, 0)
    ),
    # Several labels may be named, separated by "，": one separator token per label.
    "classify_multi": TaskSpec(
        "classify_multi",
        _plan_classify,
        _parse_classify,
        _combine_classify_multi,
        Decoding(False, 1),
    ),
    # SeqGPT's reference budget (the server's max_new_tokens) unless span_tokens_per_label is set.
    "extract": TaskSpec(
        "extract", _plan_extract, _parse_extract, _combine_extract, Decoding(False, None)
    ),
}


# A key line of a prompt typed by hand: blanks around the key, an ASCII or full-width colon.
_KEY = r"^[^\S\n]*{key}[^\S\n]*[:：][^\S\n]?"
_INPUT_LINE = re.compile(_KEY.format(key="输入"), re.MULTILINE)
_EXTRACT_LINE = re.compile(_KEY.format(key="抽取") + r"(?P<labels>.*)$", re.MULTILINE)


def read_extract_prompt(prompt: str) -> tuple[str, list[str]] | None:
    """The text and labels of an extraction prompt (``输入: …\\n抽取: …``), else None.

    Read as loosely as a hand-typed prompt is written: the labels are the last ``抽取:`` line's,
    split on either comma; the text is everything from the ``输入:`` line before it up to that
    line, stripped.
    """
    tasks = list(_EXTRACT_LINE.finditer(prompt))
    if not tasks:
        return None
    task = tasks[-1]
    inputs = list(_INPUT_LINE.finditer(prompt, 0, task.start()))
    if not inputs:
        return None
    labels = [label.strip() for label in split_labels(task["labels"]) if label.strip()]
    text = prompt[inputs[-1].end() : task.start()].strip()
    return (text, list(dict.fromkeys(labels))) if labels and text else None


def read_completion(
    prompt: str, generated: str, finish_reason: str | None, tokens: tuple[int, int] = (0, 0)
) -> TaskResult | None:
    """A completion of an extraction prompt (a free prompt's), parsed and combined as the
    extraction task's own prompts are (a generation cut at its budget loses its unfinished
    line); None when the prompt is no extraction. ``tokens``: its prompt and completion tokens.
    """
    asked = read_extract_prompt(prompt)
    if asked is None:
        return None
    text, labels = asked
    spec = TASKS["extract"]
    parsed = spec.parse(generated, labels, text, finish_reason != "length")
    generation = Generation(prompt, labels, generated, parsed, *tokens, finish_reason)
    return TaskResult(spec.name, [generation], spec.combine([generation]))
