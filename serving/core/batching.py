"""A batch request: many texts with the same labels (or schema) and options, through the service.

The batch is checked once, before any of its texts runs: its size, its labels (or schema) and
options, and room in the in-flight bound for one text (a batch none of whose texts could start
is one 413 or 429). Then one run per text: started together, the runs are admitted in input
order, each before any is planned (each takes its hold before its first wait), and each fails
alone, with its own text's 400, 413 or 429.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from serving.core.errors import InvalidInputError
from serving.core.results import TaskResult
from serving.core.schema import Schema
from serving.core.service import SeqGPTService
from serving.core.tenants import Who

__all__ = ["batch_runs"]


def batch_runs(
    service: SeqGPTService,
    task: str,
    texts: Sequence[str],
    labels: str | Sequence[str] | None,
    *,
    schema: Any = None,
    request_id: str = "batch",
    scores: bool = False,
    decoding: str = "fast",
    who: Who | None = None,
) -> list[Callable[[], Awaitable[TaskResult]]]:
    """The checked batch's runs for ``who``, one per text, not started (item ``i``'s engine
    requests are named ``{request_id}.{i}``); ``schema``: an extraction's tree instead of labels."""
    limit = service.max_batch_items
    if not texts or len(texts) > limit:
        message = f"A batch holds 1 to {limit} texts; {len(texts)} were sent."
        raise InvalidInputError(message, parameter="texts")
    ids = [f"{request_id}.{index}" for index in range(len(texts))]
    asked = service.schema_or_labels(labels, schema, decoding)
    if isinstance(asked, Schema):
        service.check_schema_room(asked, who)
        run_schema = functools.partial(service.run_schema, schema=asked, who=who)
        return [
            functools.partial(run_schema, t, request_id=i) for t, i in zip(texts, ids, strict=True)
        ]
    checked = service.checks.labels(asked)
    service.check_options(task, scores, decoding)
    service.check_room(task, checked, scores, decoding, who)

    async def run(text: str, item_id: str) -> TaskResult:
        service.checks.text(text)
        return await service.run_checked(task, text, checked, item_id, scores, decoding, who)

    return [functools.partial(run, t, i) for t, i in zip(texts, ids, strict=True)]
