"""The task endpoints: thin handlers that validate, call the service and shape the response.

Each handler runs under vLLM's ``with_cancellation``: when the client disconnects, the handler
is cancelled, which closes its ``generate`` iterators and so aborts its prompts in the engine
(vLLM's own routes do this; a plugin's routes must do it themselves).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.utils.api_utils import with_cancellation

from serving.observe import Observation, record_result
from serving.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    ExtractRequest,
    ExtractResponse,
    SpanModel,
    Usage,
)
from serving.service import SeqGPTService, TaskResult
from serving.status import StatusResponse, server_status

__all__ = ["router"]

_ERRORS = {
    400: "Invalid input: the message names the field (param) and what is wrong.",
    401: "Missing or wrong API key.",
    413: "The body is over the server's size limit.",
    429: "Over the server's in-flight limit; retry after Retry-After seconds.",
    500: "The server failed.",
    503: "The engine's queue is full, or the engine is down.",
    504: "The request ran past the server's deadline; its prompts were aborted.",
}
router = APIRouter(
    tags=["seqgpt"],
    responses={status: {"model": ErrorResponse, "description": d} for status, d in _ERRORS.items()},
)

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before the answer
_R = TypeVar("_R")


def cancel_on_disconnect(
    handler: Callable[..., Awaitable[_R]],
) -> Callable[..., Awaitable[_R | Response]]:
    """vLLM's ``with_cancellation``, answering 499 (to nobody) instead of an invalid None."""
    cancellable = with_cancellation(handler)  # type: ignore[no-untyped-call]

    @functools.wraps(handler)
    async def run(*args: Any, **kwargs: Any) -> _R | Response:
        result: _R | None = await cancellable(*args, **kwargs)
        return Response(status_code=CLIENT_CLOSED_REQUEST) if result is None else result

    return run


def _service(request: Request) -> SeqGPTService:
    service: SeqGPTService = request.app.state.seqgpt
    return service


def _common(result: TaskResult, return_prompts: bool) -> dict[str, object]:
    """Truncation, usage, and the prompts and raw generations when the client asked."""
    usage = Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )
    common: dict[str, object] = {"truncated": result.truncated, "usage": usage}
    if return_prompts:
        common["prompts"] = [g.prompt for g in result.generations]
        common["generations"] = [g.text for g in result.generations]
    return common


def _facts(request: Request) -> dict[str, Any]:
    """What the request log line says of this request (never its text or labels)."""
    facts: dict[str, Any] = request.scope.setdefault("state", {}).setdefault("seqgpt", {})
    return facts


async def _run(request: Request, task: str, body: ClassifyRequest | ExtractRequest) -> TaskResult:
    _facts(request).update(task=task, text_chars=len(body.text))
    request_id = getattr(request.state, "request_id", None)
    return await _service(request).run(task, body.text, body.labels, request_id=request_id)


def _answered(
    request: Request, body: ClassifyRequest | ExtractRequest, result: TaskResult, answer: BaseModel
) -> None:
    """Account for an answered request: log facts, metrics, and the audit log if it is on."""
    labels = sum(len(g.labels) for g in result.generations)
    _facts(request).update(labels=labels, prompts=len(result.generations))
    _facts(request)["truncated"] = result.truncated
    observation: Observation = request.app.state.seqgpt_observation
    record_result(observation.metrics, result.task, result.generations, result.value)
    if observation.audit is not None:
        observation.audit.record(
            {
                "request_id": getattr(request.state, "request_id", None),
                "task": result.task,
                "text": body.text,
                "labels": body.labels,
                "prompts": [g.prompt for g in result.generations],
                "generations": [g.text for g in result.generations],
                "result": answer.model_dump(mode="json", exclude_unset=True),
            }
        )


@router.post("/v1/classify", response_model_exclude_unset=True)
@cancel_on_disconnect
async def classify(body: ClassifyRequest, raw_request: Request) -> ClassifyResponse:
    """Zero-shot classification of ``text`` into ``labels``."""
    result = await _run(raw_request, "classify_multi" if body.multi_label else "classify", body)
    named: list[str] = result.value
    answer = ClassifyResponse(
        label=named[0] if named else None,
        labels=named,
        **_common(result, body.return_prompts),  # type: ignore[arg-type]
    )
    _answered(raw_request, body, result, answer)
    return answer


@router.post("/v1/extract", response_model_exclude_unset=True)
@cancel_on_disconnect
async def extract(body: ExtractRequest, raw_request: Request) -> ExtractResponse:
    """Zero-shot extraction of the spans of ``text`` for each field in ``labels``."""
    result = await _run(raw_request, "extract", body)
    fields = {
        label: [SpanModel(text=s.text, start=s.start, end=s.end) for s in spans]
        for label, spans in result.value.fields.items()
    }
    answer = ExtractResponse(
        fields=fields,
        ungrounded=result.value.ungrounded,
        **_common(result, body.return_prompts),  # type: ignore[arg-type]
    )
    _answered(raw_request, body, result, answer)
    return answer


@router.get("/v1/status")
async def status(raw_request: Request) -> StatusResponse:
    """Health, model, device and load of this server, for a status line or a status light."""
    return await server_status(raw_request.app.state)
