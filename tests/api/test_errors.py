"""Every bad input gets a 400 in vLLM's OpenAI error body and never reaches the engine;
engine failures get a 5xx in the same body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from vllm.exceptions import RetryableRequestError
from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

from tests.api.fake_engine import FakeEngine

JSON = {"content-type": "application/json"}
OK = {"text": "今天股市大涨", "labels": ["财经", "体育"]}


def _assert_error_body(
    response: Any, status: int, param: str | None, message: str | None = None
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status
    assert error["message"]
    assert error["param"] == param
    if message is not None:
        assert message in error["message"]
    # A sentence for people: no Python reprs of errors or of pydantic's internals.
    for leak in ("ValueError(", "{'type'", "Traceback", "validation error"):
        assert leak not in error["message"]


BAD_BODIES = [
    ("empty text", {**OK, "text": ""}, "text", "The text is empty or blank."),
    ("blank text", {**OK, "text": " \n\t "}, "text", "The text is empty or blank."),
    ("lone surrogate in text", {**OK, "text": "x\udfff y"}, "text", "unpaired surrogate"),
    ("lone surrogate in a label", {**OK, "labels": ["a\ud800"]}, "labels", "unpaired surrogate"),
    ("no labels", {**OK, "labels": []}, "labels", "At least one label"),
    ("empty label string", {**OK, "labels": ""}, "labels", "Label 0 is empty."),
    ("blank label", {**OK, "labels": ["财经", " "]}, "labels", "Label 1 is empty."),
    ("label with newline", {**OK, "labels": ["财\n经"]}, "labels", "line break"),
    ("label with full-width comma", {**OK, "labels": ["财，经"]}, "labels", "comma"),
    ("label too long", {**OK, "labels": ["x" * 65]}, "labels", "longer than 64"),
    ("label is a template key", {**OK, "labels": ["输出: 财经"]}, "labels", "template key"),
    ("too many labels", {**OK, "labels": [f"l{i}" for i in range(21)]}, "labels", "at most 20"),
    ("text wrong type", {**OK, "text": 42}, "text", "'text': input should be a valid string"),
    ("labels wrong type", {**OK, "labels": 42}, "labels", "'labels'"),
    ("label item wrong type", {**OK, "labels": ["财经", 3]}, "labels", "'labels[1]'"),
    ("missing text", {"labels": ["a"]}, "text", "The field 'text' is required."),
    ("missing labels", {"text": "a"}, "labels", "The field 'labels' is required."),
    ("unknown field", {**OK, "temperature": 1.5}, "temperature", "not accepted"),
    ("return_prompts as a string", {**OK, "return_prompts": "no"}, "return_prompts", "boolean"),
    ("return_prompts as 1", {**OK, "return_prompts": 1}, "return_prompts", "boolean"),
    ("body is a list", [OK], None, "The body must be a JSON object."),
]


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
@pytest.mark.parametrize(
    ("case", "body", "param", "message"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES]
)
def test_bad_input_is_a_400_and_never_reaches_the_engine(
    client: TestClient,
    engine: FakeEngine,
    path: str,
    case: str,
    body: Any,
    param: str | None,
    message: str,
) -> None:
    response = client.post(path, content=json.dumps(body), headers=JSON)
    _assert_error_body(response, 400, param, message)
    assert response.json()["error"]["type"] == "BadRequestError"
    assert engine.calls == []


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
def test_a_text_over_the_character_limit_is_a_413_and_never_reaches_the_engine(
    client: TestClient, engine: FakeEngine, path: str
) -> None:
    response = client.post(path, json={**OK, "text": "字" * 201})  # the limit is 200 here
    _assert_error_body(response, 413, "text", "The text has 201 characters")
    assert response.json()["error"]["type"] == "RequestTooLargeError"
    assert "at most 200" in response.json()["error"]["message"]
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


@pytest.mark.parametrize("value", ["maybe", "yes", "true", 1, 0, None])
def test_multi_label_must_be_a_json_boolean(client: TestClient, value: object) -> None:
    response = client.post("/v1/classify", json={**OK, "multi_label": value})
    _assert_error_body(response, 400, "multi_label", "boolean")


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
