"""The task registry: one table from task name to prompt plan, parser and decoding policy.

The service reads only this table, so a new task (or a new decoding policy such as beam search)
is one entry here, not a new code path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from parsers import parse_classification, parse_extraction_detailed
from prompts import build_classify_prompt, build_extract_prompts, chunk_labels, validate_labels

__all__ = ["TASKS", "Decoding", "PromptPlan", "TaskSpec"]


@dataclass(frozen=True)
class PromptPlan:
    """One prompt to send and the labels it asks about."""

    prompt: str
    labels: list[str]


@dataclass(frozen=True)
class Decoding:
    """How a task decodes: greedy, with a token budget sized from its labels.

    The budget for a prompt is ``max(label UTF-8 bytes) + slack`` when the output is constrained to
    one label, else ``sum(label tokens + per_label_tokens) + slack``; never above the server's
    ``max_new_tokens``.
    """

    constrain_to_labels: bool
    per_label_tokens: int
    slack_tokens: int = 2


@dataclass(frozen=True)
class TaskSpec:
    """A task: how to plan its prompts, how to parse each generation, how to decode."""

    name: str
    plan: Callable[[str, Sequence[str], int], list[PromptPlan]]
    parse: Callable[[str, Sequence[str], str], Any]
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


def _parse_classify(generated: str, labels: Sequence[str], _text: str) -> list[str]:
    return parse_classification(generated, labels)


TASKS: dict[str, TaskSpec] = {
    "classify": TaskSpec("classify", _plan_classify, _parse_classify, Decoding(True, 0)),
    # Several labels may be named, separated by "，": one separator token per label.
    "classify_multi": TaskSpec(
        "classify_multi", _plan_classify, _parse_classify, Decoding(False, 1)
    ),
    # per_label_tokens here is the default; the server setting span_tokens_per_label overrides it.
    "extract": TaskSpec("extract", _plan_extract, parse_extraction_detailed, Decoding(False, 48)),
}
