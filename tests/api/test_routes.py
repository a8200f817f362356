"""Routes + service over a fake engine: what is sent to the engine and what comes back."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from prompts import build_classify_prompt, build_extract_prompts
from serving.core.service import SeqGPTService
from serving.core.settings import Settings
from serving.core.tasks import TASKS
from tests.api.fake_engine import CharTokenizer, FakeEngine

TEXT = "张三于2023年5月1日在北京加入阿里巴巴。"
FIELDS = [
    "人物",
    "地点",
    "组织机构",
    "时间",
    "职位",
    "事件",
    "金额",
    "产品",
    "国家",
    "城市",
    "学校",
    "专业",
    "电话",
]


def test_classify_sends_the_exact_prompt_constrained_and_greedy(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "财经"
    body = {"text": " 今天股市大涨 ", "labels": "财经,体育，娱乐", "return_prompts": True}
    response = client.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["label"] == "财经"
    assert data["labels"] == ["财经"]
    assert data["prompts"] == [build_classify_prompt("今天股市大涨", ["财经", "体育", "娱乐"])]
    assert data["generations"] == ["财经"]
    assert data["usage"]["completion_tokens"] == 2
    (call,) = engine.calls
    assert call.params.temperature == 0.0
    assert call.params.structured_outputs is not None
    assert call.params.structured_outputs.choice == ["财经", "体育", "娱乐"]
    # Longest label is 6 UTF-8 bytes, plus 2 of slack.
    assert call.params.max_tokens == 8


def test_classify_without_return_prompts_omits_them(client: TestClient, engine: FakeEngine) -> None:
    engine.respond = lambda _p, _s: "体育"
    data = client.post("/v1/classify", json={"text": "a", "labels": ["财经", "体育"]}).json()
    assert "prompts" not in data
    assert "generations" not in data
    assert data["label"] == "体育"


def test_classify_answer_outside_the_set_gives_no_label(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "天气"
    data = client.post("/v1/classify", json={"text": "a", "labels": ["财经", "体育"]}).json()
    assert data["label"] is None
    assert data["labels"] == []


def test_multi_label_is_unconstrained_and_returns_every_named_label(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "体育，财经，天气"
    body = {"text": "a", "labels": ["财经", "体育", "娱乐"], "multi_label": True}
    data = client.post("/v1/classify", json=body).json()
    assert data["labels"] == ["体育", "财经"]
    assert data["label"] == "体育"
    (call,) = engine.calls
    assert call.params.structured_outputs is None
    assert call.params.max_tokens == 3 * (2 + 1) + 2


def _extract_answer(prompt: str, _params: object) -> str:
    labels = prompt.split("\n")[1].removeprefix("抽取: ").split("，")
    known = {"人物": "张三", "地点": "北京", "组织机构": "阿里巴巴", "时间": "2023年5月1日"}
    return "\n".join(f"{label}: {known.get(label, 'None')}" for label in labels)


def test_extract_13_labels_sends_3_chunk_prompts_and_merges_fields(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = _extract_answer
    body = {"text": TEXT, "labels": FIELDS, "return_prompts": True}
    response = client.post("/v1/extract", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["prompts"] == build_extract_prompts(TEXT, FIELDS)
    assert sorted(c.prompt for c in engine.calls) == sorted(data["prompts"])
    assert len({c.request_id for c in engine.calls}) == 3
    assert list(data["fields"]) == FIELDS
    assert data["fields"]["人物"] == [{"text": "张三", "start": 0, "end": 2}]
    assert data["fields"]["组织机构"] == [{"text": "阿里巴巴", "start": 17, "end": 21}]
    assert data["fields"]["电话"] == []
    for spans in data["fields"].values():
        for span in spans:
            assert TEXT[span["start"] : span["end"]] == span["text"]


def test_extract_reports_ungrounded_values_apart(client: TestClient, engine: FakeEngine) -> None:
    engine.respond = lambda _p, _s: "人物: 李四\n地点: 北京"
    data = client.post("/v1/extract", json={"text": TEXT, "labels": ["人物", "地点"]}).json()
    assert data["fields"] == {"人物": [], "地点": [{"text": "北京", "start": 13, "end": 15}]}
    assert data["ungrounded"] == {"人物": ["李四"]}


def test_extract_budget_is_the_reference_256_tokens_by_default(
    client: TestClient, engine: FakeEngine
) -> None:
    client.post("/v1/extract", json={"text": TEXT, "labels": FIELDS})
    assert [c.params.max_tokens for c in engine.calls] == [256, 256, 256]
    assert all(c.params.temperature == 0.0 for c in engine.calls)


def test_extract_budget_per_label_when_set_is_sized_per_chunk_and_capped(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    client = make_client(span_tokens_per_label=48)
    client.post("/v1/extract", json={"text": TEXT, "labels": ["人物"]})
    client.post("/v1/extract", json={"text": TEXT, "labels": FIELDS})
    small, *chunks = engine.calls
    assert small.params.max_tokens == 2 + 48 + 2
    assert len(chunks) == 3
    for call in chunks:
        labels = call.prompt.split("\n")[1].removeprefix("抽取: ").split("，")
        assert call.params.max_tokens == min(256, sum(len(lb) + 48 for lb in labels) + 2)


def test_extract_budget_never_exceeds_max_new_tokens(engine: FakeEngine) -> None:
    settings = Settings(max_new_tokens=100, span_tokens_per_label=48)
    service = SeqGPTService(engine, CharTokenizer(), settings, max_model_len=2048, max_inflight=8)
    params = service.sampling_params(TASKS["extract"], FIELDS[:6])
    assert params.max_tokens == 100
