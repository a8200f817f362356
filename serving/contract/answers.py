"""From a task's result to its REST answer, and the accounting of an answered request.

Shared by the single and the batch endpoints (and usable by any other caller of the service),
so every way in gives the same answer for the same text.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from serving.contract.schemas import ClassifyResponse, ExtractResponse, ItemError, SpanModel, Usage
from serving.core.errors import InvalidInputError, ServingError, error_body
from serving.core.service import TaskResult
from serving.http.observe import Observation, record_result

__all__ = ["account", "answer", "facts", "item_error"]


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
        fields = {
            label: [SpanModel(text=s.text, start=s.start, end=s.end) for s in spans]
            for label, spans in result.value.fields.items()
        }
        return ExtractResponse(fields=fields, ungrounded=result.value.ungrounded, **common)
    named: list[str] = result.value
    if result.scores is not None:
        common["scores"] = result.scores
    return ClassifyResponse(label=named[0] if named else None, labels=named, **common)


def item_error(exc: InvalidInputError | ServingError) -> ItemError:
    """A batch item's error, in the common error body."""
    if isinstance(exc, InvalidInputError):
        return ItemError.model_validate(error_body(400, str(exc), exc.parameter))
    return ItemError.model_validate(error_body(exc.status, str(exc), exc.param))


def facts(request: Request) -> dict[str, Any]:
    """What the request log line says of this request (never its text or labels)."""
    found: dict[str, Any] = request.scope.setdefault("state", {}).setdefault("seqgpt", {})
    return found


def account(
    request: Request, text: str, labels: Any, result: TaskResult, response: Any, item: str = ""
) -> None:
    """Count an answered text in the log facts and metrics, and audit it if the log is on."""
    found = facts(request)
    found["labels"] = sum(len(g.labels) for g in result.generations if g.window == 0)
    found["prompts"] = found.get("prompts", 0) + len(result.generations)
    found["windows"] = found.get("windows", 0) + result.windows
    found["truncated"] = found.get("truncated", False) or result.truncated
    observation: Observation = request.app.state.seqgpt_observation
    record_result(observation.metrics, result.task, result.generations, result.value)
    if observation.audit is not None:
        request_id = getattr(request.state, "request_id", None)
        observation.audit.record(
            {
                "request_id": f"{request_id}{item}",
                "task": result.task,
                "text": text,
                "labels": labels,
                "prompts": [g.prompt for g in result.generations],
                "generations": [g.text for g in result.generations],
                "result": response.model_dump(mode="json", exclude_unset=True),
            }
        )
