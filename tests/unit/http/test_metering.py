"""What a limited tenant's answer is charged: a completion's ``usage.prompt_tokens``, a streamed
one's request body size (an upper bound), an error nothing; and the headers each answer carries."""

from __future__ import annotations

import asyncio
import json

from starlette.types import Message

from serving.core.ratelimits import Bucket, TenantLimits
from serving.http.metering import BODY_BYTES_STATE, metered


def _charged(path: str, content_type: bytes, body: bytes, body_bytes: int = 500) -> float:
    clock = [0.0]
    tokens = Bucket(10_000, lambda: clock[0])
    limits = TenantLimits(None, tokens)
    scope = {"type": "http", "state": {BODY_BYTES_STATE: body_bytes}}
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        async with metered(scope, send, limits, path) as metered_send:
            start = {"type": "http.response.start", "status": 200}
            await metered_send(start | {"headers": [(b"content-type", content_type)]})
            await metered_send({"type": "http.response.body", "body": body})

    asyncio.run(run())
    names = {name for name, _ in sent[0]["headers"]}
    assert b"x-ratelimit-remaining-tokens" in names
    return 10_000 - tokens.level()


def test_a_completion_is_charged_its_usage() -> None:
    answer = json.dumps({"choices": [], "usage": {"prompt_tokens": 37, "total_tokens": 40}})
    assert _charged("/v1/completions", b"application/json", answer.encode()) == 37


def test_a_streamed_completion_is_charged_its_body_size() -> None:
    assert _charged("/v1/chat/completions", b"text/event-stream", b"data: {}\n\n", 321) == 321


def test_an_error_is_charged_nothing_and_other_routes_neither() -> None:
    error = json.dumps({"error": {"message": "no", "type": "x", "param": None, "code": 400}})
    assert _charged("/v1/completions", b"application/json", error.encode()) == 0
    assert _charged("/v1/models", b"application/json", b'{"data": []}') == 0
