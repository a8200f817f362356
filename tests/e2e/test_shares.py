"""Interactive before batch on the real server (the tier's shared one, CPU backend defaults: one
batch prompt in the engine beside interactive work, ``serving.core.turns``).

The engine is held still (``tests.servers.paused_engine``) while the work arrives, so what is in
flight is known by construction, whatever the machine's speed: an interactive request, then six
batch requests (``X-SeqGPT-Priority: batch``): one of them goes to the engine, five wait for a
turn in the API process, as ``/v1/status`` shows per tenant and level. A second interactive
request sent after them goes to the engine at once. Every request asks the same classification
(the same tokens: those in the engine together end at the same step), so once the engine goes
on, the batch requests that waited start only after the batch request in the engine ended, and
the interactive request sent after them is answered first. The batch requests are submitted at
engine priority 2: the engine, which schedules by priority, accepts them (vLLM refuses a
non-zero priority without ``--scheduling-policy priority``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from loadtest.server import ServerProcess
from tests.e2e.conftest import API_KEY
from tests.servers import Pace, paused_engine

AUTH = {"Authorization": f"Bearer {API_KEY}"}
BODY = {"text": "今天上证指数收涨1.2%，券商板块领涨。", "labels": ["财经", "体育", "娱乐"]}
BATCH = {"X-SeqGPT-Priority": "batch"}
BATCH_REQUESTS = 6


def _status(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/v1/status")
    response.raise_for_status()
    status: dict[str, Any] = response.json()
    return status


async def _until(http: httpx.AsyncClient, done: Any, limit_s: float) -> dict[str, Any]:
    """``/v1/status`` once ``done(status)`` holds (the work sent has reached its place)."""
    deadline = time.monotonic() + limit_s
    while True:
        status: dict[str, Any] = (await http.get("/v1/status")).json()
        if done(status):
            return status
        assert time.monotonic() < deadline, f"the work never reached its place: {status}"
        await asyncio.sleep(0.05)


def test_an_interactive_request_goes_before_batch_work_waiting_for_its_turn(
    server: ServerProcess, http: httpx.Client, pace: Pace
) -> None:
    finished: list[str] = []

    async def send(client: httpx.AsyncClient, name: str, headers: dict[str, str]) -> None:
        response = await client.post("/v1/classify", json=BODY, headers=headers)
        assert response.status_code == 200, response.text
        finished.append(name)

    def level(name: str, count: int) -> Any:
        return lambda status: status["inflight_by_level"][name] == count

    async def run() -> dict[str, Any]:
        limit = pace(30)
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=300) as client:
            with contextlib.ExitStack() as paused:
                paused.enter_context(paused_engine(server))
                sent = [asyncio.create_task(send(client, "first", {}))]
                await _until(client, level("interactive", 1), limit)
                sent.append(asyncio.create_task(send(client, "batch0", BATCH)))  # its turn
                await _until(client, level("batch", 1), limit)
                for i in range(1, BATCH_REQUESTS):
                    sent.append(asyncio.create_task(send(client, f"batch{i}", BATCH)))
                await _until(client, level("batch", BATCH_REQUESTS), limit)
                sent.append(asyncio.create_task(send(client, "second", {})))
                held = await _until(client, level("interactive", 2), limit)
            await asyncio.gather(*sent)  # the engine goes on
            return held

    held = asyncio.run(run())
    assert held["inflight_by_level"] == {"interactive": 2, "batch": BATCH_REQUESTS}
    assert held["inflight_by_tenant"] == {"default": {"interactive": 2, "batch": BATCH_REQUESTS}}
    assert held["batch_prompts_waiting"] == BATCH_REQUESTS - 1  # one in the engine beside them
    waited = [f"batch{i}" for i in range(1, BATCH_REQUESTS)]
    assert finished.index("second") < min(map(finished.index, waited)), finished
    after = _status(http)
    assert (after["inflight_prompts"], after["batch_prompts_waiting"]) == (0, 0)
    assert after["inflight_by_tenant"] == {}
