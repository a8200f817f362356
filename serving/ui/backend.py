"""What the web UI calls: the REST API's own request models, service, completion handler and
status (the route's own function, which the plugin hands it), reached from the app state. No
Gradio here, and no second path for prompts or parsing.

- Classification and extraction validate the input with the REST API's request models
  (``serving.contract.schemas``), then call ``SeqGPTService.run``: the same limits, prompts,
  in-flight bound, deadline and parsers as ``/v1/classify`` and ``/v1/extract``, answered as the
  same response models.
- A free prompt goes to vLLM's own completions handler (what ``/v1/completions`` runs), greedy,
  with ``max_tokens`` held to the server's completion limit as the gate holds it; when it is an
  extraction prompt, its generation is read by the task core (``serving.core.tasks``) and
  answered as ``/v1/extract`` answers, so the page parses nothing itself.
- Every failure becomes a ``PageError`` holding the sentence the REST API would answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from vllm.entrypoints.openai.completion.protocol import CompletionRequest
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.exception_handling.error_response import create_error_response
from vllm.exceptions import VLLMError

from serving.contract.answers import answer
from serving.contract.limits import CompletionLimits, completion_limit_error
from serving.contract.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    ExtractRequest,
    ExtractResponse,
    Usage,
)
from serving.contract.status import StatusResponse
from serving.contract.validation import describe_validation_errors
from serving.core.errors import ServingError
from serving.core.schema import Schema
from serving.core.service import SeqGPTService
from serving.core.tasks import read_completion

__all__ = ["Backend", "Completion", "PageError"]

logger = logging.getLogger(__name__)
_FAILED = "The server failed to answer this request."


class PageError(Exception):
    """A request the page could not have answered: its message is the API's sentence."""


@dataclass(frozen=True)
class Completion:
    """A free prompt's generation."""

    text: str
    finish_reason: str | None
    usage: Usage
    fields: ExtractResponse | None = None
    """The generation read as ``/v1/extract`` reads its own, when the prompt is an extraction."""

    @property
    def truncated(self) -> bool:
        """Whether the generation stopped at ``max_tokens``."""
        return self.finish_reason == "length"


class Backend:
    """The UI's way into the server, from the app state vLLM and the plugin set up."""

    def __init__(
        self,
        state: Any,
        limits: CompletionLimits,
        status: Callable[[], Awaitable[StatusResponse]],
    ) -> None:
        self._state = state
        self._limits = limits
        self._status = status

    @property
    def _service(self) -> SeqGPTService:
        service: SeqGPTService = self._state.seqgpt
        return service

    async def classify(
        self, text: str, labels: str, multi_label: bool, scores: bool = False
    ) -> ClassifyResponse:
        """``POST /v1/classify``'s answer for this input."""
        with _page_errors():
            body = ClassifyRequest(text=text, labels=labels, multi_label=multi_label, scores=scores)
            task = "classify_multi" if body.multi_label else "classify"
            result = await self._service.run(task, body.text, body.labels, scores=body.scores)
        response = answer(result, return_prompts=False)
        assert isinstance(response, ClassifyResponse)
        return response

    async def extract(self, text: str, labels: str, schema: str = "") -> ExtractResponse:
        """``POST /v1/extract``'s answer for this input; a ``schema`` (JSON text), when given,
        is sent instead of the labels."""
        tree = _schema_json(schema)
        with _page_errors():
            if tree is None:
                body = ExtractRequest(text=text, labels=labels)
            else:
                body = ExtractRequest.model_validate({"text": text, "schema": tree})
            service = self._service
            asked = service.schema_or_labels(body.labels, body.schema_, body.decoding)
            if isinstance(asked, Schema):
                result = await service.run_schema(body.text, asked)
            else:
                result = await service.run("extract", body.text, asked)
        response = answer(result, return_prompts=False)
        assert isinstance(response, ExtractResponse)
        return response

    async def complete(self, prompt: str, max_tokens: int) -> Completion:
        """A greedy completion of ``prompt``, as ``POST /v1/completions`` makes it."""
        problem = completion_limit_error({"max_tokens": max_tokens}, self._limits)
        if problem is not None:
            raise PageError(problem[0])
        with _page_errors():
            fields = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0}
            request = CompletionRequest.model_validate(fields)
            handler = self._state.openai_serving_completion
            response = await handler.create_completion(request, None)
        if isinstance(response, ErrorResponse):
            raise PageError(response.error.message)
        choice, counts = response.choices[0], response.usage
        usage = Usage(
            prompt_tokens=counts.prompt_tokens,
            completion_tokens=counts.completion_tokens or 0,
            total_tokens=counts.total_tokens,
        )
        tokens = (usage.prompt_tokens, usage.completion_tokens)
        result = read_completion(prompt, choice.text, choice.finish_reason, tokens)
        read = None if result is None else answer(result, return_prompts=False)
        assert read is None or isinstance(read, ExtractResponse)
        return Completion(choice.text, choice.finish_reason, usage, read)

    async def status(self) -> StatusResponse | None:
        """``GET /v1/status``'s answer, or None when it cannot be read."""
        try:
            return await self._status()
        except Exception:  # the light then says the status could not be read
            logger.warning("seqgpt ui: the server status could not be read", exc_info=True)
            return None


def _schema_json(schema: str) -> Any:
    """The schema box's JSON, or None when it is blank."""
    if not schema.strip():
        return None
    try:
        return json.loads(schema)
    except json.JSONDecodeError as exc:
        raise PageError(f"The schema is not valid JSON: {exc.msg} (line {exc.lineno}).") from None


@contextmanager
def _page_errors() -> Iterator[None]:
    """Turn every failure into the sentence the REST API answers for it."""
    try:
        yield
    except ValidationError as exc:
        raise PageError(describe_validation_errors(exc.errors())[0]) from None
    except ServingError as exc:
        raise PageError(str(exc)) from None
    except VLLMError as exc:  # invalid input found by the service, or the engine's failures
        raise PageError(create_error_response(exc).error.message) from None
    except Exception as exc:
        logger.error("seqgpt ui: request failed: %s", type(exc).__name__)
        logger.debug("seqgpt ui: request failure", exc_info=exc)
        raise PageError(_FAILED) from exc
