"""``AsyncSeqGPTClient`` against scripted server answers: the same calls, awaited, with the
same retries (its waits through an injected sleep) and the same errors."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from serving.client import AsyncSeqGPTClient, SeqGPTConnectionError, SeqGPTError
from serving.client.retry import RetryBudget
from serving.contract.schemas import ClassifyResponse, ExtractResponse

USAGE = {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}
CLASSIFIED = {"label": "a", "labels": ["a"], "windows": 1, "truncated": False, "usage": USAGE}
EXTRACTED = {"fields": {"人物": []}, "windows": 1, "truncated": False, "usage": USAGE}


def _client(
    replies: list[httpx.Response | Exception], **options: Any
) -> tuple[AsyncSeqGPTClient, list[httpx.Request], list[float]]:
    sent: list[httpx.Request] = []
    waits: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = AsyncSeqGPTClient(
        "http://server", transport=httpx.MockTransport(handle), sleep=sleep, **options
    )
    client.retry = replace(client.retry, rng=lambda: 0.0)  # the jitter's low end: exact waits
    return client, sent, waits


def test_calls_are_awaited_typed_and_carry_the_key() -> None:
    replies: list[httpx.Response | Exception] = [
        httpx.Response(200, json=CLASSIFIED),
        httpx.Response(200, json=EXTRACTED),
    ]
    client, sent, _ = _client(replies, api_key="k")

    async def main() -> tuple[ClassifyResponse, ExtractResponse]:
        async with client:
            return await client.classify("今天", ["a"]), await client.extract("张三", "人物")

    classified, extracted = asyncio.run(main())
    assert classified.label == "a"
    assert list(extracted.fields) == ["人物"]
    assert [request.url.path for request in sent] == ["/v1/classify", "/v1/extract"]
    assert all(request.headers["Authorization"] == "Bearer k" for request in sent)
    assert json.loads(sent[1].content) == {"text": "张三", "labels": "人物"}
    assert client._http.is_closed


def test_429_is_retried_after_retry_after() -> None:
    replies: list[httpx.Response | Exception] = [
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(200, json=CLASSIFIED),
    ]
    client, sent, waits = _client(replies)
    assert asyncio.run(client.classify("今天", ["a"])).label == "a"
    assert (len(sent), waits) == (2, [3.0])


def test_retry_after_0_waits_the_floor_and_the_budget_bounds_the_calls() -> None:
    busy = [httpx.Response(503, headers={"Retry-After": "0"}) for _ in range(4)]
    budget = RetryBudget(ratio=0.0, per_second=0.0, burst=2.0)
    client, sent, waits = _client(busy, max_retries=5, retry_budget=budget)
    with pytest.raises(SeqGPTError):
        asyncio.run(client.classify("今天", ["a"]))
    assert (len(sent), waits) == (3, [0.5, 1.0])  # two retries: the budget's two tokens


def test_errors_are_raised_as_in_the_blocking_client() -> None:
    body = {"error": {"message": "Bad.", "type": "BadRequestError", "param": "text", "code": 400}}
    client, _, _ = _client([httpx.Response(400, json=body), httpx.ConnectTimeout("slow")])
    with pytest.raises(SeqGPTError) as raised:
        asyncio.run(client.classify(" ", ["a"]))
    assert (raised.value.status_code, raised.value.param, raised.value.message) == (
        400,
        "text",
        "Bad.",
    )
    with pytest.raises(SeqGPTConnectionError) as dropped:
        asyncio.run(client.classify("t", ["a"]))
    assert dropped.value.type == "ConnectTimeout"


def test_priority_goes_as_a_header() -> None:
    client, sent, _ = _client([httpx.Response(200, json=CLASSIFIED)], priority="interactive")

    async def main() -> None:
        async with client:
            await client.classify("今天", ["a"])

    asyncio.run(main())
    assert sent[0].headers["X-SeqGPT-Priority"] == "interactive"
