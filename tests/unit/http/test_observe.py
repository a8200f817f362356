"""A client that left gets 499 (to nobody): it is still counted and logged, like any answer."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from starlette.types import Message, Receive, Scope, Send

from serving.http.lifecycle import Drain
from serving.http.observe import Observer, task_metrics


async def _left(_scope: Scope, _receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 499, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_a_499_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    metrics = task_metrics()
    observer = Observer(_left, metrics=metrics, drain=Drain(0), log=True)
    scope: Scope = {"type": "http", "path": "/v1/extract", "headers": [], "method": "POST"}
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    with caplog.at_level(logging.INFO):
        asyncio.run(observer(scope, receive, send))
    assert sent[0]["status"] == 499
    assert metrics.requests.labels("extract", "499", "-")._value.get() == 1
    messages = [record.getMessage() for record in caplog.records]
    lines = [json.loads(message) for message in messages if '"status": 499' in message]
    assert [(line["task"], line["status"]) for line in lines] == [("extract", 499)]
