"""The task endpoints' errors, rendered by vLLM's own exception handlers.

Every error a client can cause is an ``InvalidInputError``: vLLM's ``VLLMValidationError``
with the offending request field as ``param``, so vLLM's handler answers 400 with the same
``{"error": {"message", "type", "param", "code"}}`` body as its OpenAI endpoints. Request-body
schema errors (missing fields, wrong types, invalid JSON) are pydantic's, which vLLM's handler
also answers with 400 in that body. Engine failures are vLLM's own ``EngineGenerateError`` /
``EngineDeadError`` (500) and queue overflow ``QueueOverflowError`` (503); they pass through.
"""

from __future__ import annotations

from vllm.exceptions import VLLMValidationError

__all__ = ["InvalidInputError"]


class InvalidInputError(VLLMValidationError):
    """A request the task endpoints cannot serve as sent (400, with ``param``)."""
