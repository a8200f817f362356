"""The task endpoints: thin handlers that validate, call the service and shape the response."""

from __future__ import annotations

from fastapi import APIRouter, Request

from serving.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    ExtractRequest,
    ExtractResponse,
    SpanModel,
    Usage,
)
from serving.service import SeqGPTService, TaskResult

__all__ = ["router"]

router = APIRouter(tags=["seqgpt"])


def _service(request: Request) -> SeqGPTService:
    service: SeqGPTService = request.app.state.seqgpt
    return service


def _usage(result: TaskResult) -> Usage:
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


def _echo(result: TaskResult, return_prompts: bool) -> dict[str, list[str]]:
    """Prompts and raw generations, only when the client asked for them."""
    if not return_prompts:
        return {}
    return {
        "prompts": [g.prompt for g in result.generations],
        "generations": [g.text for g in result.generations],
    }


@router.post("/v1/classify", response_model_exclude_unset=True)
async def classify(body: ClassifyRequest, request: Request) -> ClassifyResponse:
    """Zero-shot classification of ``text`` into ``labels``."""
    labels = list(body.labels)
    result = await _service(request).classify(body.text, labels, multi_label=body.multi_label)
    named: list[str] = result.generations[0].parsed
    return ClassifyResponse(
        label=named[0] if named else None,
        labels=named,
        usage=_usage(result),
        **_echo(result, body.return_prompts),
    )


@router.post("/v1/extract", response_model_exclude_unset=True)
async def extract(body: ExtractRequest, request: Request) -> ExtractResponse:
    """Zero-shot extraction of the spans of ``text`` for each field in ``labels``."""
    result = await _service(request).extract(body.text, list(body.labels))
    fields: dict[str, list[SpanModel]] = {}
    ungrounded: dict[str, list[str]] = {}
    for generation in result.generations:
        for label, spans in generation.parsed.fields.items():
            fields[label] = [SpanModel(text=s.text, start=s.start, end=s.end) for s in spans]
        ungrounded.update(generation.parsed.ungrounded)
    return ExtractResponse(
        fields=fields,
        ungrounded=ungrounded,
        usage=_usage(result),
        **_echo(result, body.return_prompts),
    )
