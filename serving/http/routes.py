"""The task endpoints: thin handlers that validate, call the service and shape the response.

Each handler runs under vLLM's ``with_cancellation``: when the client disconnects, the handler
is cancelled, which closes its ``generate`` iterators and so aborts its prompts in the engine
(vLLM's own routes do this; a plugin's routes must do it themselves).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.utils.api_utils import with_cancellation

from serving.contract.answers import answer, item_error
from serving.contract.schemas import (
    ClassifyBatchRequest,
    ClassifyBatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    ExtractBatchRequest,
    ExtractBatchResponse,
    ExtractRequest,
    ExtractResponse,
    ItemError,
)
from serving.contract.status import StatusResponse
from serving.core.batching import batch_runs
from serving.core.errors import InvalidInputError, ServingError
from serving.core.results import TaskResult
from serving.core.schema import Schema
from serving.core.service import SeqGPTService
from serving.http.counting import account, facts
from serving.http.status import server_status
from serving.http.who import who_of

__all__ = ["BATCH_PATHS", "TASK_PATHS", "router"]

_ERRORS = {
    400: "Invalid input: the message names the field (param) and what is wrong.",
    401: "Missing or wrong API key.",
    413: "The body is over the server's size limit, the text over SEQGPT_MAX_TEXT_CHARS, or "
    "its windows need more prompts than the server admits at once (param: text).",
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


def _options(body: Any) -> dict[str, Any]:
    """The request's decoding options, as ``SeqGPTService.run`` takes them."""
    return {"scores": getattr(body, "scores", False), "decoding": body.decoding}


def _asked_for(service: SeqGPTService, body: Any) -> Schema | str | Sequence[str]:
    """The request's labels, or (extraction) its checked schema tree."""
    if not hasattr(body, "schema_"):
        labels: str | Sequence[str] = body.labels
        return labels
    return service.schema_or_labels(body.labels, body.schema_, body.decoding)


def _asked(body: Any) -> Any:
    """What the request asked for, for the audit log: its labels, or its schema."""
    return body.labels if body.labels is not None else {"schema": body.schema_}


async def _single(
    request: Request, task: str, body: ClassifyRequest | ExtractRequest
) -> ClassifyResponse | ExtractResponse:
    facts(request).update(task=task, text_chars=len(body.text))
    who = who_of(request.scope)
    request_id = getattr(request.state, "request_id", None)
    service = _service(request)
    asked = _asked_for(service, body)
    if isinstance(asked, Schema):
        result = await service.run_schema(body.text, asked, request_id=request_id, who=who)
    else:
        options = _options(body) | {"request_id": request_id, "who": who}
        result = await service.run(task, body.text, asked, **options)
    return _answered(request, body, body.text, result)


async def _batch(
    request: Request, task: str, body: ClassifyBatchRequest | ExtractBatchRequest
) -> list[ClassifyResponse | ExtractResponse | ItemError]:
    """Every text at once: the batch is checked once, then each text fails alone
    (``serving.core.batching``)."""
    request_id = getattr(request.state, "request_id", None) or "batch"
    who = who_of(request.scope, batch_route=True)
    options = _options(body) | {"schema": getattr(body, "schema_", None), "who": who}
    runs = batch_runs(
        _service(request), task, body.texts, body.labels, request_id=request_id, **options
    )
    facts(request).update(task=task, items=len(body.texts), text_chars=sum(map(len, body.texts)))
    return list(await asyncio.gather(*(_item(request, body, i, run) for i, run in enumerate(runs))))


async def _item(
    request: Request, body: Any, index: int, run: Callable[[], Awaitable[TaskResult]]
) -> ClassifyResponse | ExtractResponse | ItemError:
    """One text of a batch: its answer as it ends, or its own error."""
    try:
        result = await run()
    except (InvalidInputError, ServingError) as exc:
        return item_error(exc)
    return _answered(request, body, body.texts[index], result, item=f".{index}")


def _answered(
    request: Request, body: Any, text: str, result: TaskResult, item: str = ""
) -> ClassifyResponse | ExtractResponse:
    """A text's answer, counted in the log facts, metrics and audit log (``account``)."""
    response = answer(result, body.return_prompts)
    account(request, text, _asked(body), result, response, item=item)
    return response


@router.post("/v1/classify", response_model_exclude_unset=True)
@cancel_on_disconnect
async def classify(body: ClassifyRequest, raw_request: Request) -> ClassifyResponse:
    """Zero-shot classification of ``text`` into ``labels``."""
    task = "classify_multi" if body.multi_label else "classify"
    return await _single(raw_request, task, body)  # type: ignore[return-value]


@router.post("/v1/extract", response_model_exclude_unset=True)
@cancel_on_disconnect
async def extract(body: ExtractRequest, raw_request: Request) -> ExtractResponse:
    """Zero-shot extraction of the spans of ``text`` for each field in ``labels``."""
    return await _single(raw_request, "extract", body)  # type: ignore[return-value]


@router.post("/v1/classify/batch", response_model_exclude_unset=True)
@cancel_on_disconnect
async def classify_batch(body: ClassifyBatchRequest, raw_request: Request) -> ClassifyBatchResponse:
    """``/v1/classify`` for many texts with the same labels, answered in input order."""
    task = "classify_multi" if body.multi_label else "classify"
    results = await _batch(raw_request, task, body)
    return ClassifyBatchResponse(results=results)  # type: ignore[arg-type]


@router.post("/v1/extract/batch", response_model_exclude_unset=True)
@cancel_on_disconnect
async def extract_batch(body: ExtractBatchRequest, raw_request: Request) -> ExtractBatchResponse:
    """``/v1/extract`` for many texts with the same labels, answered in input order."""
    results = await _batch(raw_request, "extract", body)
    return ExtractBatchResponse(results=results)  # type: ignore[arg-type]


@router.get("/v1/status")
async def status(raw_request: Request) -> StatusResponse:
    """Health, model, device and load of this server, for a status line or a status light."""
    return await server_status(raw_request.app.state)


TASK_PATHS = frozenset(route.path for route in router.routes if "POST" in route.methods)  # type: ignore[attr-defined]
"""The routes whose requests the service admits under its in-flight bound."""
BATCH_PATHS = frozenset(path for path in TASK_PATHS if path.endswith("/batch"))
"""The task routes whose work is batch work whoever sends it."""
