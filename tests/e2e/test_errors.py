"""Every bad input through the real server: a 400 in vLLM's OpenAI error body, and the server
keeps serving."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.test_errors import BAD_BODIES, JSON, OK

from .conftest import MAX_TEXT_CHARS

# The API tier's table.
E2E_BAD_BODIES = [(case, body, param) for case, body, param, _message in BAD_BODIES]


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
@pytest.mark.parametrize(
    ("case", "body", "param"), E2E_BAD_BODIES, ids=[c[0] for c in E2E_BAD_BODIES]
)
def test_bad_input_is_a_400(
    http: httpx.Client, path: str, case: str, body: Any, param: str
) -> None:
    response = http.post(path, content=json.dumps(body), headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["param"]) == (400, param)


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
def test_invalid_json_is_a_400(http: httpx.Client, path: str) -> None:
    response = http.post(path, content=b"{oops", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
def test_a_text_over_the_character_limit_is_a_413(http: httpx.Client, path: str) -> None:
    response = http.post(path, json={**OK, "text": "字" * (MAX_TEXT_CHARS + 1)})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("RequestTooLargeError", "text", 413)
    assert f"{MAX_TEXT_CHARS + 1} characters" in error["message"]


def test_server_still_serves_after_bad_inputs(http: httpx.Client) -> None:
    assert http.post("/v1/classify", json=OK).status_code == 200
