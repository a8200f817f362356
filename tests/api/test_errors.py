"""Every bad input gets a 400 in vLLM's OpenAI error body and never reaches the engine;
engine failures get a 5xx in the same body."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from vllm.exceptions import RetryableRequestError
from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

from tests.api.fake_engine import FakeEngine

OK = {"text": "今天股市大涨", "labels": ["财经", "体育"]}


def _assert_error_body(response: Any, status: int, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status
    assert error["message"]
    assert error["param"] == param


BAD_BODIES = [
    ("empty text", {**OK, "text": ""}, "body.text"),
    ("blank text", {**OK, "text": " \n\t "}, "body.text"),
    ("text too long", {**OK, "text": "字" * 201}, "text"),
    ("no labels", {**OK, "labels": []}, "body.labels"),
    ("empty label string", {**OK, "labels": ""}, "body.labels"),
    ("blank label", {**OK, "labels": ["财经", " "]}, "body.labels"),
    ("label with newline", {**OK, "labels": ["财\n经"]}, "body.labels"),
    ("label with full-width comma", {**OK, "labels": ["财，经"]}, "body.labels"),
    ("label too long", {**OK, "labels": ["x" * 65]}, "body.labels"),
    ("label is a template key", {**OK, "labels": ["输出: 财经"]}, "body.labels"),
    ("too many labels", {**OK, "labels": [f"l{i}" for i in range(21)]}, "labels"),
    ("text wrong type", {**OK, "text": 42}, "body.text"),
    ("labels wrong type", {**OK, "labels": 42}, "body.labels"),
    ("label item wrong type", {**OK, "labels": ["财经", 3]}, "body.labels.1"),
    ("missing text", {"labels": ["a"]}, "body.text"),
    ("missing labels", {"text": "a"}, "body.labels"),
    ("unknown field", {**OK, "temperature": 1.5}, "body.temperature"),
    ("body is a list", [OK], "body"),
]


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
@pytest.mark.parametrize(("case", "body", "param"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_input_is_a_400_and_never_reaches_the_engine(
    client: TestClient, engine: FakeEngine, path: str, case: str, body: Any, param: str
) -> None:
    response = client.post(path, json=body)
    _assert_error_body(response, 400, param)
    assert engine.calls == []


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"\xff\xfe", b'{"text": "a", "labels": ["a"]'], ids=repr
)
def test_invalid_json_is_a_400(
    client: TestClient, engine: FakeEngine, path: str, raw: bytes
) -> None:
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert engine.calls == []


def test_multi_label_wrong_type_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/classify", json={**OK, "multi_label": "maybe"})
    _assert_error_body(response, 400, "body.multi_label")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (EngineGenerateError("request failed in the engine"), 500),
        (EngineDeadError("engine died"), 500),
        (RetryableRequestError(), 503),
        (RuntimeError("boom"), 500),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
def test_engine_failure_is_a_5xx_in_the_same_body(
    client: TestClient, engine: FakeEngine, path: str, error: BaseException, status: int
) -> None:
    engine.respond = lambda _p, _s: error
    labels = [f"l{i}" for i in range(13)]
    response = client.post(path, json={**OK, "labels": labels})
    _assert_error_body(response, status, None)
