"""From a task's result to its REST answer, and a batch item's error.

Shared by every front end (the single and batch endpoints, the web UI, the batch CLI's rows), so
every way in gives the same answer for the same text. What an answered request counts in the
metrics and logs is the HTTP surface's (``serving.http.counting``).
"""

from __future__ import annotations

from typing import Any

from parsers import Span
from serving.contract.schemas import ClassifyResponse, ExtractResponse, ItemError, SpanModel, Usage
from serving.core.errors import InvalidInputError, ServingError, error_body
from serving.core.results import TaskResult
from serving.core.schema import Nested

__all__ = ["answer", "item_error"]


def answer(result: TaskResult, return_prompts: bool) -> ClassifyResponse | ExtractResponse:
    """The REST response for one text's result."""
    usage = Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )
    common: dict[str, Any] = {
        "windows": result.windows,
        "truncated": result.truncated,
        "usage": usage,
    }
    if return_prompts:
        common["prompts"] = [g.prompt for g in result.generations]
        common["generations"] = [g.text for g in result.generations]
    if result.task == "extract":
        fields = _fields(result.value)
        return ExtractResponse(fields=fields, ungrounded=result.value.ungrounded, **common)
    named: list[str] = result.value
    if result.scores is not None:
        common["scores"] = result.scores
    return ClassifyResponse(label=named[0] if named else None, labels=named, **common)


def _fields(value: Any) -> dict[str, list[SpanModel]]:
    """Each field's spans; with a schema (a ``Nested`` answer), each span of a field with
    children holds its entity's fields (``None``: not expanded), level by level."""
    return {label: [_span(value, label, s) for s in spans] for label, spans in value.fields.items()}


def _span(value: Any, label: str, span: Span) -> SpanModel:
    if not isinstance(value, Nested) or label not in value.expandable:
        return SpanModel(text=span.text, start=span.start, end=span.end)
    below = value.children.get((label, span.text))
    if below is None:
        return SpanModel(text=span.text, start=span.start, end=span.end, fields=None)
    return SpanModel(
        text=span.text,
        start=span.start,
        end=span.end,
        fields=_fields(below),
        ungrounded=below.ungrounded,
    )


def item_error(exc: InvalidInputError | ServingError) -> ItemError:
    """A batch item's error, in the common error body."""
    if isinstance(exc, InvalidInputError):
        return ItemError.model_validate(error_body(400, str(exc), exc.parameter))
    return ItemError.model_validate(error_body(exc.status, str(exc), exc.param))
