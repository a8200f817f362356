"""Admission before planning, over a fake engine: a request the in-flight bound has no room for
is refused before its text is tokenized, and a costly plan runs off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from vllm.sampling_params import RequestOutputKind

from serving.core.errors import Overloaded, TooLarge
from serving.core.forcing import PROCESSOR
from serving.core.service import SeqGPTService
from serving.core.settings import Settings
from tests.api.fake_engine import CharTokenizer, FakeEngine

LABELS_13 = [f"字段{i}" for i in range(13)]  # 3 extraction prompts
JSON = {"Content-Type": "application/json"}


class CountingTokenizer(CharTokenizer):
    """Counts its encodes and records the threads they ran on."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def encode(self, text: str, **kwargs: Any) -> list[int]:
        self.threads.append(threading.current_thread().name)
        return super().encode(text, **kwargs)


def _service(engine: FakeEngine, max_inflight: int, **settings: Any) -> SeqGPTService:
    return SeqGPTService(
        engine,
        CountingTokenizer(),
        Settings(ui=False, **settings),
        max_model_len=2048,
        max_inflight=max_inflight,
    )


def _encodes(service: SeqGPTService) -> list[str]:
    tokenizer: CountingTokenizer = service.planner._tokenizer  # type: ignore[assignment]
    return tokenizer.threads


def test_a_request_with_no_room_now_is_a_429_before_its_text_is_tokenized(
    engine: FakeEngine,
) -> None:
    engine.delay = 0.3
    service = _service(engine, max_inflight=4)

    async def run() -> None:
        holding = asyncio.create_task(service.extract("张三在北京。", LABELS_13))
        await asyncio.sleep(0.05)  # planned and running: 3 of 4 prompts held
        assert service.inflight == 3
        before = len(_encodes(service))
        with pytest.raises(Overloaded):
            await service.extract("李四" * 3000, LABELS_13[:9])  # 2 prompts
        with pytest.raises(Overloaded):
            service.check_room("extract", LABELS_13[:9], scores=False, decoding="fast")
        assert len(_encodes(service)) == before  # refused from counts alone
        await holding

    asyncio.run(run())
    assert service.inflight == 0


@pytest.mark.parametrize(
    ("task", "labels", "options"),
    [
        ("classify", [f"类{i}" for i in range(9)], {"scores": True}),  # 9 scored labels
        ("extract", LABELS_13, {"decoding": "reference"}),  # 3 prompts x 4 beams
    ],
    ids=["scores", "reference"],
)
def test_a_request_that_could_never_fit_is_a_413_before_its_text_is_tokenized(
    engine: FakeEngine, task: str, labels: list[str], options: dict[str, Any]
) -> None:
    service = _service(engine, max_inflight=8)
    with pytest.raises(TooLarge, match="8 prompts at once"):
        asyncio.run(service.run(task, "王五" * 5000, labels, **options))
    assert _encodes(service) == []
    assert engine.calls == []
    assert service.inflight == 0


def test_a_costly_plan_runs_in_a_planning_thread_and_a_cheap_one_inline(
    engine: FakeEngine,
) -> None:
    service = _service(engine, max_inflight=8)
    asyncio.run(service.extract("短文本。", ["人物"]))
    assert set(_encodes(service)) == {threading.main_thread().name}
    _encodes(service).clear()
    asyncio.run(service.extract("长" * 2000, LABELS_13))  # 3 prompts of 2,000 characters
    assert _encodes(service)
    assert all(name.startswith("seqgpt-plan") for name in _encodes(service))


def test_a_plan_waiting_for_a_thread_is_dropped_when_its_request_is_cancelled(
    engine: FakeEngine,
) -> None:
    service = _service(engine, max_inflight=64)
    started = threading.Event()
    release = threading.Event()
    prepare = service.planner.prepare

    def slow_prepare(*args: Any) -> Any:
        started.set()
        release.wait(5)
        return prepare(*args)

    service.planner.prepare = slow_prepare  # type: ignore[method-assign]

    async def run() -> None:
        text = "长" * 5000
        # Two planning threads: two plans run, the third waits for a thread.
        tasks = [asyncio.create_task(service.extract(text, ["人物"])) for _ in range(3)]
        await asyncio.to_thread(started.wait, 5)
        await asyncio.sleep(0.05)
        assert service.inflight == 3
        tasks[2].cancel()
        await asyncio.sleep(0.05)
        assert service.inflight == 2  # its hold is given back at once
        release.set()
        await asyncio.gather(*tasks[:2])
        with pytest.raises(asyncio.CancelledError):
            await tasks[2]

    asyncio.run(run())
    requests = {call.request_id.rsplit("-", 1)[0] for call in engine.calls}
    assert len(requests) == 2  # the cancelled request never reached the engine


def test_a_batch_none_of_whose_texts_could_ever_fit_is_one_413(
    client: TestClient, engine: FakeEngine
) -> None:
    labels = [f"类{i}" for i in range(20)]  # 20 scored labels, over the bound of 16
    body = {"texts": ["甲", "乙"], "labels": labels, "scores": True}
    response = client.post("/v1/classify/batch", json=body)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "RequestTooLargeError"
    assert engine.calls == []


def test_while_the_bound_is_full_a_task_request_is_refused_before_its_body_is_parsed(
    make_client: Any, engine: FakeEngine
) -> None:
    client: TestClient = make_client(max_inflight=4)
    engine.delay = 0.5
    labels = [f"字段{i}" for i in range(20)]  # 4 prompts: the whole bound
    holding = threading.Thread(
        target=client.post,
        args=("/v1/extract",),
        kwargs={"json": {"text": "张三", "labels": labels}},
    )
    holding.start()
    try:
        deadline = time.monotonic() + 5
        while client.app.state.seqgpt.inflight < 4 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        for path in ["/v1/classify", "/v1/extract/batch"]:
            refused = client.post(path, content=b"{not json", headers=JSON)
            assert refused.status_code == 429, refused.text  # not the 400 of a parsed body
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["type"] == "RateLimitError"
        assert client.get("/v1/status").status_code == 200  # not a task route
    finally:
        holding.join()
    assert client.post("/v1/classify", content=b"{not json", headers=JSON).status_code == 400


def test_a_short_text_is_tokenized_once_and_its_prompts_finish_once(engine: FakeEngine) -> None:
    """The lean path: a text of fewer UTF-8 bytes than the context has tokens is read once, in
    its prompt (no count of it alone, no empty prompt for the room), and every prompt asks the
    engine for its final output only (no output object per token), scored reads too. Its tokens
    go as a raw TokensPrompt, which vLLM processes in an executor thread, off the event loop."""
    engine.respond = lambda _p, _s: "体育"
    service = _service(engine, max_inflight=64)
    asyncio.run(service.classify("中国队赢了决赛。", ["体育", "财经"]))
    assert len(_encodes(service)) == 1
    engine.logits_processors = [PROCESSOR]  # scores by forced reads, as the server runs them
    scoring = _service(engine, max_inflight=64)
    asyncio.run(scoring.run("classify", "中国队赢了决赛。", ["体育", "财经"], scores=True))
    assert [call.rendered for call in engine.calls] == [None] * 3
    assert {call.params.output_kind for call in engine.calls} == {RequestOutputKind.FINAL_ONLY}


def test_a_long_text_that_could_never_fit_is_refused_after_one_read_of_it(
    engine: FakeEngine,
) -> None:
    """100,000 characters in 2,048-token prompts need ~60 windows of 3 prompts: over 64."""
    service = _service(engine, max_inflight=64)
    text = "张三在北京工作。" * 12_500
    with pytest.raises(TooLarge, match="windows"):
        asyncio.run(service.extract(text, LABELS_13))
    # The 3 prompts' instruction and labels, and the text once: not a count per sentence.
    assert len(_encodes(service)) == 4
    assert service.inflight == 0


@pytest.mark.parametrize(
    ("max_inflight", "processes", "share"),
    [(None, 1, 16), (None, 2, 8), (9, 2, 4), (12, 3, 4)],
)
def test_the_bound_is_the_servers_and_each_api_process_admits_its_share(
    engine: FakeEngine, max_inflight: int | None, processes: int, share: int
) -> None:
    """SEQGPT_MAX_INFLIGHT (default 2 x max_num_seqs = 16 here) bounds the server: with N API
    processes, each admits bound // N, so together they never admit more than the bound."""
    settings = Settings(ui=False, max_inflight=max_inflight, max_labels=24)  # 4 prompts at most
    service = SeqGPTService.for_engine(engine, settings, processes=processes)
    assert service.max_inflight == share


def test_a_share_too_small_for_the_largest_request_is_refused_at_startup(
    engine: FakeEngine,
) -> None:
    settings = Settings(ui=False, max_inflight=4, max_labels=24)  # 4 extraction prompts
    assert SeqGPTService.for_engine(engine, settings).max_inflight == 4
    with pytest.raises(ValueError, match=r"=4 split over 2 API processes \(2 each\) is below"):
        SeqGPTService.for_engine(engine, settings, processes=2)
