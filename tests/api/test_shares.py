"""Interactive before batch over a fake engine: batch prompts take turns in the engine beside
interactive work, in arrival order, leave cleanly when cancelled, and every engine request
carries its level's priority; the priority header and the batch routes say what is batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from vllm.sampling_params import SamplingParams

from serving.core.service import SeqGPTService
from serving.core.settings import Settings
from serving.core.tenants import Who
from serving.core.turns import Turns
from serving.plugin import _shed
from tests.api.fake_engine import CharTokenizer, FakeEngine

LABELS = ["财经", "体育", "娱乐"]
BATCH = Who("data", batch=True)
SEARCH = Who("search")


@dataclass
class HeldEngine(FakeEngine):
    """Every request waits in the engine until ``go`` is set; ``submitted`` lists their ids as
    they reach it."""

    go: asyncio.Event = field(default_factory=asyncio.Event)
    submitted: list[str] = field(default_factory=list)

    async def generate(  # type: ignore[override]
        self, prompt: dict[str, Any], params: SamplingParams, request_id: str, **kwargs: Any
    ) -> AsyncIterator[Any]:
        self.submitted.append(request_id)
        await self.go.wait()
        async for output in super().generate(prompt, params, request_id, **kwargs):
            yield output


def _service(engine: FakeEngine, *, busy: int = 1, idle: int = 8) -> SeqGPTService:
    settings = Settings(ui=False)
    return SeqGPTService(
        engine,
        CharTokenizer(),
        settings,
        max_model_len=2048,
        max_inflight=32,
        batch=Turns(busy=busy, idle=idle),
    )


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def _classify(service: SeqGPTService, name: str, who: Who) -> asyncio.Task[Any]:
    work = service.run("classify", f"文本{name}", LABELS, request_id=name, who=who)
    return asyncio.create_task(work)


def _names(engine: HeldEngine) -> list[str]:
    return [rid.split("-")[0] for rid in engine.submitted]


def test_beside_interactive_work_batch_prompts_take_busy_turns_in_arrival_order() -> None:
    async def run() -> None:
        engine = HeldEngine()
        service = _service(engine, busy=1, idle=8)
        search = _classify(service, "s", SEARCH)
        await _settle()
        batch = [_classify(service, f"b{i}", BATCH) for i in range(4)]
        await _settle()
        assert _names(engine) == ["s", "b0"]  # one batch prompt beside the interactive one
        assert service.batch_turns.waiting == 3
        engine.go.set()
        await asyncio.gather(search, *batch)
        assert _names(engine) == ["s", "b0", "b1", "b2", "b3"]
        assert service.inflight == 0
        assert service.batch_turns.holding == 0

    asyncio.run(run())


def test_with_nothing_interactive_batch_work_fills_its_idle_turns() -> None:
    async def run() -> None:
        engine = HeldEngine()
        service = _service(engine, busy=1, idle=3)
        batch = [_classify(service, f"b{i}", BATCH) for i in range(5)]
        await _settle()
        assert _names(engine) == ["b0", "b1", "b2"]
        search = _classify(service, "s", SEARCH)  # interactive work comes: busy turns from now
        await _settle()
        assert _names(engine) == ["b0", "b1", "b2", "s"]  # interactive work never waits a turn
        engine.go.set()
        await asyncio.gather(search, *batch)

    asyncio.run(run())


def test_a_batch_request_cancelled_while_waiting_frees_its_place_and_its_hold() -> None:
    async def run() -> None:
        engine = HeldEngine()
        service = _service(engine, busy=1, idle=1)
        first, left, last = (_classify(service, f"b{i}", BATCH) for i in range(3))
        await _settle()
        assert service.holding() == {"data": {"interactive": 0, "batch": 3}}
        left.cancel()  # its client left while it waited for a turn
        await _settle()
        assert service.holding() == {"data": {"interactive": 0, "batch": 2}}
        engine.go.set()
        await asyncio.gather(first, last)
        with pytest.raises(asyncio.CancelledError):
            await left
        assert _names(engine) == ["b0", "b2"]
        assert service.batch_turns.holding == 0
        assert service.holding() == {}

    asyncio.run(run())


@pytest.mark.parametrize(
    ("who", "scores", "priority"),
    [(SEARCH, False, 0), (SEARCH, True, 1), (BATCH, False, 2), (BATCH, True, 3)],
    ids=["interactive", "interactive-scores", "batch", "batch-scores"],
)
def test_engine_requests_carry_their_levels_priority(
    engine: FakeEngine, who: Who, scores: bool, priority: int
) -> None:
    service = _service(engine)
    asyncio.run(service.run("classify", "今天的比赛", LABELS, scores=scores, who=who))
    assert engine.calls
    assert {call.priority for call in engine.calls} == {priority}


def _post(client: TestClient, path: str, headers: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"labels": LABELS}
    body |= {"texts": ["今天的比赛"]} if path.endswith("/batch") else {"text": "今天的比赛"}
    return client.post(path, json=body, headers=headers or {})


@pytest.mark.parametrize(
    ("path", "header", "priority"),
    [
        ("/v1/classify", None, 0),
        ("/v1/classify", "interactive", 0),
        ("/v1/classify", "Batch", 2),
        ("/v1/classify/batch", None, 2),
        ("/v1/classify/batch", "interactive", 2),  # a batch route stays batch work
    ],
)
def test_the_header_and_the_batch_routes_decide_the_level(
    client: TestClient, engine: FakeEngine, path: str, header: str | None, priority: int
) -> None:
    response = _post(client, path, {"X-SeqGPT-Priority": header} if header else None)
    assert response.status_code == 200, response.text
    assert [call.priority for call in engine.calls] == [priority]


def test_a_bad_priority_header_is_a_400_naming_it(client: TestClient, engine: FakeEngine) -> None:
    response = _post(client, "/v1/classify", {"X-SeqGPT-Priority": "urgent"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "X-SeqGPT-Priority"
    assert "interactive, batch" in error["message"]
    assert "'urgent'" in error["message"]
    assert engine.calls == []


class _Asked:
    """A service's ``refusal_now`` that records who asks (and refuses none)."""

    def __init__(self) -> None:
        self.whos: list[Who | None] = []

    def refusal_now(self, who: Who | None = None) -> None:
        self.whos.append(who)


@pytest.mark.parametrize(
    ("path", "headers", "asked"),
    [
        ("/v1/classify", [], [Who("default", 1.0, False)]),
        ("/v1/classify", [(b"x-seqgpt-priority", b"batch")], [Who("default", 1.0, True)]),
        ("/v1/extract/batch", [], [Who("default", 1.0, True)]),
        ("/v1/classify", [(b"x-seqgpt-priority", b"soon")], []),  # the route's 400
        ("/v1/completions", [], []),  # not a task route
    ],
)
def test_the_gates_shed_asks_for_whom_the_request_is(
    path: str, headers: list[tuple[bytes, bytes]], asked: list[Who]
) -> None:
    service = _Asked()
    scope = {"type": "http", "path": path, "headers": headers, "state": {}}
    assert _shed(SimpleNamespace(seqgpt=service), scope) is None  # type: ignore[arg-type]
    assert service.whos == asked
