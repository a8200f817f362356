"""The batch endpoints over the fake engine: order, per-item errors, the batch limits, the
in-flight bound, and the same answers as the single endpoints."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.api.fake_engine import FakeEngine

LABELS = ["人物", "地点"]


def _answer_by_text(prompt: str, _params: object) -> str:
    text = prompt.split("\n")[0].removeprefix("输入: ")
    return f"人物: {text[:2]}"


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
def test_a_batch_answers_each_text_in_order_as_the_single_endpoint_does(
    client: TestClient, engine: FakeEngine, path: str
) -> None:
    engine.respond = _answer_by_text
    texts = ["张三在北京", "李四在上海", "王五在深圳"]
    batch = client.post(f"{path}/batch", json={"texts": texts, "labels": LABELS})
    assert batch.status_code == 200, batch.text
    singles = [client.post(path, json={"text": t, "labels": LABELS}).json() for t in texts]
    assert batch.json()["results"] == singles


@pytest.mark.parametrize("path", ["/v1/classify/batch", "/v1/extract/batch"])
def test_a_bad_text_fails_its_item_alone(client: TestClient, engine: FakeEngine, path: str) -> None:
    engine.respond = _answer_by_text
    texts = ["张三在北京", "", "x\udfff", "字" * 201, "李四在上海"]
    body = '{"texts": ["张三在北京", "", "x\\udfff", "' + "字" * 201 + '", "李四在上海"], '
    body += '"labels": ["人物", "地点"]}'
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(texts)
    assert "error" not in results[0]
    assert "error" not in results[4]
    for bad in results[1:3]:
        assert bad["error"]["type"] == "BadRequestError"
        assert bad["error"]["param"] == "text"
    # Over SEQGPT_MAX_TEXT_CHARS (200 here): a 413 for that item alone.
    assert results[3]["error"]["type"] == "RequestTooLargeError"
    assert (results[3]["error"]["code"], results[3]["error"]["param"]) == (413, "text")
    assert "201 characters" in results[3]["error"]["message"]
    assert len(engine.calls) == 2


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"texts": [], "labels": LABELS}, "texts", "1 to 64 texts; 0 were sent"),
        ({"texts": ["a"] * 65, "labels": LABELS}, "texts", "65 were sent"),
        ({"texts": ["a", "b"], "labels": ["人物", ""]}, "labels", "Label 1 is empty."),
        ({"texts": "a", "labels": LABELS}, "texts", "valid list"),
        ({"texts": ["a"], "labels": LABELS, "temperature": 1}, "temperature", "not accepted"),
    ],
    ids=["empty", "over-the-limit", "bad-label", "texts-not-a-list", "unknown-field"],
)
@pytest.mark.parametrize("path", ["/v1/classify/batch", "/v1/extract/batch"])
def test_a_bad_batch_is_a_400_and_reaches_no_engine(
    client: TestClient, engine: FakeEngine, path: str, body: object, param: str, message: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["type"]) == (param, "BadRequestError")
    assert message in error["message"]
    assert engine.calls == []


def test_items_over_the_inflight_bound_fail_alone_with_429(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    client = make_client(max_inflight=4, max_labels=13)
    engine.respond = lambda _p, _s: "人物: 张"
    labels = [f"l{i}" for i in range(13)]  # 3 prompts per text: one text fits at a time
    texts = ["张三", "李四", "王五"]
    engine.delay = 0.2
    results = client.post("/v1/extract/batch", json={"texts": texts, "labels": labels}).json()
    kinds = [r["error"]["type"] if "error" in r else "ok" for r in results["results"]]
    assert kinds.count("ok") == 1
    assert kinds.count("RateLimitError") == 2
