"""What a limited tenant's answer carries and costs: the rate-limit headers, and the prompt tokens
its work used, charged to its bucket once the answer is sent (``serving.core.ratelimits``).

The prompt tokens charged:

- a task route: the sum of the prompts' tokens the engine ran (``serving.http.counting``
  records it in the request's facts), windows and score reads included;
- a completion route answered in one JSON body: its ``usage.prompt_tokens``;
- a streamed completion (or one whose body is over ``_MAX_CAPTURE`` bytes, or without usage):
  the request body's size in bytes, an upper bound of its prompt's tokens (this byte-level
  BPE tokenizer makes no token of less than one byte of text, and a prompt of token ids
  spends at least two bytes of JSON per token);
- any other route: nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

from starlette.responses import Response
from starlette.types import Message, Scope, Send

from serving.core.ratelimits import TenantLimits, over_limit_message
from serving.http.error_handlers import error_response

__all__ = ["BODY_BYTES_STATE", "COUNTED_PATHS", "metered", "over_limit"]

BODY_BYTES_STATE = "seqgpt_body_bytes"
"""The size of the request body the gate read (``scope["state"]``)."""
_TASK_PATHS = frozenset({"/v1/classify", "/v1/extract", "/v1/classify/batch", "/v1/extract/batch"})
_COMPLETION_PATHS = frozenset({"/v1/completions", "/v1/chat/completions", "/invocations"})
COUNTED_PATHS = _TASK_PATHS | _COMPLETION_PATHS
_MAX_CAPTURE = 1 << 20


def over_limit(name: str, wait_s: float, limits: TenantLimits) -> Response:
    """The 429 of a tenant over its limit: ``Retry-After`` in whole seconds (at least 1)."""
    message, seconds = over_limit_message(name, wait_s)
    response = error_response(HTTPStatus.TOO_MANY_REQUESTS, message, retry_after=seconds)
    response.raw_headers.extend(limits.headers())
    return response


@asynccontextmanager
async def metered(scope: Scope, send: Send, limits: TenantLimits, path: str) -> AsyncIterator[Send]:
    """A ``send`` adding the rate-limit headers to the answer; on exit, the prompt tokens the
    request used are charged to ``limits``."""
    captured: list[bytes] = []
    size = 0
    json_answer = False

    async def send_metered(message: Message) -> None:
        nonlocal size, json_answer
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *limits.headers()]}
            content_type = dict(message["headers"]).get(b"content-type", b"")
            json_answer = content_type.startswith(b"application/json")
        elif message["type"] == "http.response.body" and json_answer and size <= _MAX_CAPTURE:
            chunk = message.get("body", b"")
            size += len(chunk)
            captured.append(chunk)
        await send(message)

    try:
        yield send_metered
    finally:
        if path in COUNTED_PATHS:
            limits.charge(_prompt_tokens(scope, path, b"".join(captured), size))


def _prompt_tokens(scope: Scope, path: str, body: bytes, size: int) -> int:
    state = scope.get("state", {})
    if path in _TASK_PATHS:
        return int(state.get("seqgpt", {}).get("prompt_tokens", 0))
    bound = int(state.get(BODY_BYTES_STATE, 0))
    if not body or size > _MAX_CAPTURE:
        return bound
    try:
        usage = json.loads(body).get("usage") or {}
        return int(usage["prompt_tokens"])
    except (ValueError, TypeError, KeyError, AttributeError):  # an error body, no usage
        return 0 if _is_error(body) else bound


def _is_error(body: bytes) -> bool:
    """Whether the answer is an error body (its request ran no prompt worth charging)."""
    try:
        return isinstance(json.loads(body).get("error"), dict)
    except (ValueError, AttributeError):
        return False
