"""classify and extract through the real server, real vLLM, real plugin."""

from __future__ import annotations

import asyncio

import httpx

from loadtest.server import ServerProcess
from prompts import build_classify_prompt, build_extract_prompts

from .conftest import API_KEY

TEXT = "张三于2023年5月1日在北京加入阿里巴巴，担任技术总监。"
LABELS_13 = ["人物", "地点", "组织机构", "时间", "职位", "事件", "金额", "产品", "国家", "城市",
             "学校", "专业", "电话"]  # fmt: skip


def _grounded(text: str, fields: dict[str, list[dict[str, object]]]) -> None:
    for spans in fields.values():
        for span in spans:
            assert text[span["start"] : span["end"]] == span["text"]  # type: ignore[misc]


def test_classify_returns_one_label_of_the_set(http: httpx.Client) -> None:
    labels = ["财经", "体育", "娱乐", "科技"]
    body = {"text": "今天上证指数大涨", "labels": "财经,体育，娱乐,科技", "return_prompts": True}
    response = http.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["label"] in labels
    assert data["labels"] == [data["label"]]
    assert data["prompts"] == [build_classify_prompt("今天上证指数大涨", labels)]
    assert data["generations"] == [data["label"]]
    assert data["usage"]["prompt_tokens"] > 0
    assert data["usage"]["completion_tokens"] > 0


def test_classify_english_and_multi_label_stay_in_the_set(http: httpx.Client) -> None:
    labels = ["positive", "negative", "neutral"]
    for multi in (False, True):
        body = {"text": "Great phone, fast delivery!", "labels": labels, "multi_label": multi}
        data = http.post("/v1/classify", json=body).json()
        assert set(data["labels"]) <= set(labels)
        assert len(set(data["labels"])) == len(data["labels"])
        if not multi:
            assert data["label"] in labels


def test_extract_one_label(http: httpx.Client) -> None:
    data = http.post("/v1/extract", json={"text": TEXT, "labels": ["人物"]}).json()
    assert list(data["fields"]) == ["人物"]
    _grounded(TEXT, data["fields"])
    assert isinstance(data["ungrounded"], dict)


def test_extract_13_labels_in_3_chunk_prompts(http: httpx.Client) -> None:
    body = {"text": TEXT, "labels": LABELS_13, "return_prompts": True}
    response = http.post("/v1/extract", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["prompts"] == build_extract_prompts(TEXT, LABELS_13)
    assert len(data["generations"]) == 3
    assert list(data["fields"]) == LABELS_13
    _grounded(TEXT, data["fields"])


def test_concurrent_requests_all_succeed(server: ServerProcess) -> None:
    async def run() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as c:
            calls = [
                c.post("/v1/classify", json={"text": f"文本{i}", "labels": ["甲", "乙"]})
                for i in range(16)
            ] + [c.post("/v1/extract", json={"text": TEXT, "labels": LABELS_13}) for _ in range(4)]
            return await asyncio.gather(*calls)

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 20


def test_latency_tool_measures_both_requests(server: ServerProcess) -> None:
    from loadtest.latency import REQUESTS, measure

    medians = measure(server.url, repeats=1, api_key=API_KEY)
    assert set(medians) == set(REQUESTS)
    assert all(seconds > 0 for seconds in medians.values())


def test_batch_endpoints_answer_in_order_with_per_item_errors(http: httpx.Client) -> None:
    labels = ["财经", "体育", "娱乐"]
    texts = ["今天上证指数大涨", "", "国足晋级", "新片票房破亿"]
    response = http.post("/v1/classify/batch", json={"texts": texts, "labels": labels})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 4
    assert results[1]["error"]["param"] == "text"
    for index in (0, 2, 3):
        assert results[index]["label"] in labels
    response = http.post("/v1/extract/batch", json={"texts": [TEXT, TEXT], "labels": LABELS_13})
    for result in response.json()["results"]:
        assert list(result["fields"]) == LABELS_13
        _grounded(TEXT, result["fields"])
