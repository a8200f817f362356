"""Nested schemas over a scripted engine: the nested answer, the prompts in order, admission of
the whole tree before any tokenization, and each bad schema's 400."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from prompts import build_extract_prompts
from serving.contract.limits import CompletionLimits
from serving.core.errors import Overloaded, TooLarge
from serving.core.schema import Schema
from serving.core.service import SeqGPTService
from serving.core.settings import Settings
from serving.http.status import server_status
from serving.ui.backend import Backend, PageError
from tests.api.fake_engine import CharTokenizer, FakeEngine

TEXT = "张三是阿里巴巴的经理，李四也在阿里巴巴。阿里巴巴总部在杭州。"
ANSWERS = {
    "人物": "张三\t李四",
    "公司": "阿里巴巴",
    "张三的职位": "经理",
    "张三的就职于": "阿里巴巴",
    "李四的就职于": "阿里巴巴\t腾讯",
    "阿里巴巴的总部": "杭州",
}
_LABELS = re.compile(r"\n抽取: (.*)\n输出: ")


def _script(prompt: str, _params: object) -> str:
    """One line per label of the prompt: the scripted answer, or None."""
    match = _LABELS.search(prompt)
    assert match is not None, prompt
    return "\n".join(f"{label}: {ANSWERS.get(label, 'None')}" for label in match[1].split("，"))


def _span(text: str, **more: Any) -> dict[str, Any]:
    start = TEXT.index(text)
    return {"text": text, "start": start, "end": start + len(text), **more}


def _all(text: str, **more: Any) -> list[dict[str, Any]]:
    starts = [m.start() for m in re.finditer(re.escape(text), TEXT)]
    return [{"text": text, "start": s, "end": s + len(text), **more} for s in starts]


@pytest.fixture
def scripted(engine: FakeEngine) -> FakeEngine:
    engine.respond = _script
    return engine


def test_a_two_level_schema_answers_each_entity_with_its_own_fields(
    client: TestClient, scripted: FakeEngine
) -> None:
    body = {"text": TEXT, "schema": {"人物": ["职位", "就职于"], "公司": None}}
    response = client.post("/v1/extract", json={**body, "return_prompts": True})
    assert response.status_code == 200, response.text
    data = response.json()
    alibaba = _all("阿里巴巴")
    assert data["fields"] == {
        "人物": [
            _span("张三", fields={"职位": [_span("经理")], "就职于": alibaba}, ungrounded={}),
            _span("李四", fields={"职位": [], "就职于": alibaba}, ungrounded={"就职于": ["腾讯"]}),
        ],
        "公司": alibaba,
    }
    assert data["ungrounded"] == {}
    assert data["prompts"] == [
        *build_extract_prompts(TEXT, ["人物", "公司"]),
        *build_extract_prompts(TEXT, ["张三的职位", "张三的就职于"]),
        *build_extract_prompts(TEXT, ["李四的职位", "李四的就职于"]),
    ]
    assert [c.prompt for c in scripted.calls] == data["prompts"]
    assert len({c.request_id for c in scripted.calls}) == 3
    assert data["windows"] == 1


def test_a_third_level_composes_with_the_entity_found_one_level_up(
    make_client: Callable[..., TestClient], scripted: FakeEngine
) -> None:
    client = make_client(max_inflight=73)  # 1 + 8 entities x (1 + 8 entities x 1 prompt)
    body = {"text": TEXT, "schema": {"人物": {"就职于": ["总部"]}}, "return_prompts": True}
    data = client.post("/v1/extract", json=body).json()
    company = _all("阿里巴巴", fields={"总部": [_span("杭州")]}, ungrounded={})
    zhang, li = data["fields"]["人物"]
    assert zhang["fields"] == {"就职于": company}
    assert li["fields"] == {"就职于": company}
    assert li["ungrounded"] == {"就职于": ["腾讯"]}
    assert data["prompts"] == [
        *build_extract_prompts(TEXT, ["人物"]),
        *build_extract_prompts(TEXT, ["张三的就职于"]),
        *build_extract_prompts(TEXT, ["阿里巴巴的总部"]),
        *build_extract_prompts(TEXT, ["李四的就职于"]),
        *build_extract_prompts(TEXT, ["阿里巴巴的总部"]),
    ]


def test_entities_past_the_limit_are_not_expanded_and_say_so(
    make_client: Callable[..., TestClient], scripted: FakeEngine
) -> None:
    client = make_client(schema_max_entities=1)
    body = {"text": TEXT, "schema": {"人物": ["职位"]}}
    data = client.post("/v1/extract", json=body).json()
    assert data["fields"]["人物"] == [
        _span("张三", fields={"职位": [_span("经理")]}, ungrounded={}),
        _span("李四", fields=None),
    ]
    assert len(scripted.calls) == 2


def test_a_plain_request_answers_as_before_without_new_keys(
    client: TestClient, scripted: FakeEngine
) -> None:
    data = client.post("/v1/extract", json={"text": TEXT, "labels": ["人物"]}).json()
    assert data["fields"] == {"人物": [_span("张三"), _span("李四")]}
    assert set(data) == {"fields", "ungrounded", "windows", "truncated", "usage"}


def test_a_batch_with_a_schema_answers_every_text_nested(
    make_client: Callable[..., TestClient], scripted: FakeEngine
) -> None:
    client = make_client(max_inflight=18)  # each text holds its tree of 9 prompts
    body = {"texts": [TEXT, "无关的话。"], "schema": {"人物": ["职位"]}}
    response = client.post("/v1/extract/batch", json=body)
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["fields"]["人物"][0] == _span(
        "张三", fields={"职位": [_span("经理")]}, ungrounded={}
    )
    assert second["fields"] == {"人物": []}  # its text names nobody: no child prompt
    assert second["ungrounded"] == {"人物": ["张三", "李四"]}
    assert len(scripted.calls) == 1 + 2 + 1


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({}, "non-empty object"),
        ({"人物": [1]}, "field names"),
        ({"人物": [["职位"]]}, "field names"),
        ({"人物": "职位"}, "non-empty object"),
        ({"人物": {}}, "non-empty object"),
        ({"": ["职位"]}, "empty"),
        ({"人物": ["职位", " "]}, "empty"),
        ({"人物,公司": ["职位"]}, "comma"),
        ({"人物": [f"属性{i}" for i in range(7)]}, "at most 6"),
        ({"人物": {"公司": {"总部": ["城市"]}}}, "SEQGPT_SCHEMA_MAX_DEPTH"),
    ],
    ids=[
        "empty",
        "number-leaf",
        "list-leaf",
        "string-value",
        "empty-level",
        "empty-key",
        "blank-leaf",
        "comma",
        "too-many-children",
        "too-deep",
    ],
)
def test_a_bad_schema_is_a_400_naming_schema(
    client: TestClient, scripted: FakeEngine, schema: Any, fragment: str
) -> None:
    for path, body in [
        ("/v1/extract", {"text": TEXT, "schema": schema}),
        ("/v1/extract/batch", {"texts": [TEXT], "schema": schema}),
    ]:
        response = client.post(path, json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == "schema", error
        assert fragment in error["message"], error
    assert scripted.calls == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"labels": ["人物"], "schema": {"人物": ["职位"]}}, "schema"),
        ({"schema": ["人物"]}, "schema"),
        ({"schema": {"人物": ["职位"]}, "decoding": "reference"}, "decoding"),
        ({}, "labels"),
        ({"labels": None}, "labels"),
    ],
    ids=["with-labels", "not-an-object", "reference", "neither", "null-labels"],
)
def test_schema_with_labels_or_options_it_lacks_is_a_400(
    client: TestClient, scripted: FakeEngine, body: dict[str, Any], param: str
) -> None:
    response = client.post("/v1/extract", json={"text": TEXT, **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert scripted.calls == []


def test_a_tree_that_could_never_fit_is_a_413_naming_schema(
    make_client: Callable[..., TestClient], scripted: FakeEngine
) -> None:
    client = make_client(max_inflight=8)  # 1 + 8 entities x 1 prompt = 9 prompts
    for path, body in [
        ("/v1/extract", {"text": TEXT, "schema": {"人物": ["职位"]}}),
        ("/v1/extract/batch", {"texts": [TEXT], "schema": {"人物": ["职位"]}}),
    ]:
        response = client.post(path, json=body)
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["param"] == "schema"
        assert "9 prompts" in error["message"]
    assert scripted.calls == []
    ok = client.post("/v1/extract", json={"text": TEXT, "labels": ["人物"]})
    assert ok.status_code == 200


class _CountingTokenizer(CharTokenizer):
    def __init__(self) -> None:
        self.encodes = 0

    def encode(self, text: str, **kwargs: Any) -> list[int]:
        self.encodes += 1
        return super().encode(text, **kwargs)


def _service(engine: FakeEngine, max_inflight: int) -> tuple[SeqGPTService, _CountingTokenizer]:
    tokenizer = _CountingTokenizer()
    settings = Settings(ui=False)
    service = SeqGPTService(
        engine, tokenizer, settings, max_model_len=2048, max_inflight=max_inflight
    )
    return service, tokenizer


def test_the_tree_is_admitted_up_front_before_any_tokenization(scripted: FakeEngine) -> None:
    scripted.delay = 0.2
    service, tokenizer = _service(scripted, max_inflight=12)
    schema = service.check_schema({"人物": ["职位", "就职于"]})
    assert service.schema_prompts(schema) == 9
    deep = Schema(["人物"], {"人物": Schema(["就职于"], {"就职于": Schema(["总部"])})})
    assert service.schema_prompts(deep) == 1 + 8 * (1 + 8 * 1)

    async def run() -> None:
        with pytest.raises(TooLarge):
            await service.run_schema(TEXT, deep)
        assert tokenizer.encodes == 0
        holding = asyncio.create_task(service.run_schema(TEXT, schema))
        await asyncio.sleep(0.05)
        assert service.inflight == 9  # the whole tree, while its top level runs
        before = tokenizer.encodes
        with pytest.raises(Overloaded):
            await service.run_schema(TEXT, schema)
        with pytest.raises(Overloaded):
            service.check_schema_room(schema)
        assert tokenizer.encodes == before
        await asyncio.sleep(0.25)  # the top level answered: both entities' prompts at once
        assert len(scripted.calls) == 3
        assert not scripted.cancelled
        await holding

    asyncio.run(run())
    assert service.inflight == 0


def test_cancelling_a_schema_request_aborts_its_child_prompts(scripted: FakeEngine) -> None:
    scripted.delay = 0.2
    service, _ = _service(scripted, max_inflight=32)
    schema = service.check_schema({"人物": ["职位"]})

    async def run() -> None:
        task = asyncio.create_task(service.run_schema(TEXT, schema))
        await asyncio.sleep(0.3)  # the top level answered, the two child prompts running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(scripted.calls) == 3
    assert sorted(scripted.cancelled) == sorted(c.request_id for c in scripted.calls[1:])
    assert service.inflight == 0


def test_the_web_uis_schema_box_gets_the_apis_nested_answer_and_sentences(
    client: TestClient, scripted: FakeEngine
) -> None:
    limits = CompletionLimits(max_tokens=16, n=1, logprobs=0)
    state = SimpleNamespace(seqgpt=client.app.state.seqgpt)
    backend = Backend(state, limits, functools.partial(server_status, state))
    answer = asyncio.run(backend.extract(TEXT, "人物", '{"人物": ["职位"]}'))  # labels ignored
    api = client.post("/v1/extract", json={"text": TEXT, "schema": {"人物": ["职位"]}}).json()
    assert answer.model_dump(mode="json", exclude_unset=True) == api
    plain = asyncio.run(backend.extract(TEXT, "人物", " "))  # a blank box: the labels
    assert list(plain.fields) == ["人物"]
    with pytest.raises(PageError, match="not valid JSON"):
        asyncio.run(backend.extract(TEXT, "", "{"))
    with pytest.raises(PageError, match="field names"):
        asyncio.run(backend.extract(TEXT, "", '{"人物": [1]}'))
