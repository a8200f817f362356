"""What an answered task request counts: its request-log facts, the task metrics, the audit log.

The route handlers call these after each answered text (one per batch item), so the single and
the batch endpoints count alike.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from serving.core.results import TaskResult
from serving.http.observe import Observation, record_result, tenant_label

__all__ = ["account", "facts"]


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
    found["prompt_tokens"] = found.get("prompt_tokens", 0) + result.prompt_tokens  # its limit
    found["windows"] = found.get("windows", 0) + result.windows
    found["truncated"] = found.get("truncated", False) or result.truncated
    observation: Observation = request.app.state.seqgpt_observation
    record_result(observation.metrics, result.task, result.generations, result.value)
    if observation.audit is not None:
        request_id = getattr(request.state, "request_id", None)
        observation.audit.record(
            {
                "request_id": f"{request_id}{item}",
                "tenant": tenant_label(request.scope),
                "task": result.task,
                "text": text,
                "labels": labels,
                "prompts": [g.prompt for g in result.generations],
                "generations": [g.text for g in result.generations],
                "result": response.model_dump(mode="json", exclude_unset=True),
            }
        )
