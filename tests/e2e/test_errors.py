"""Every bad input through the real server: a 400 in vLLM's OpenAI error body, and the server
keeps serving."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_errors import BAD_BODIES, OK

from .conftest import MAX_TEXT_CHARS

# The API tier's table, with its text limit swapped for the e2e server's.
E2E_BAD_BODIES = [
    (case, {**OK, "text": "字" * (MAX_TEXT_CHARS + 1)} if case == "text too long" else body, param)
    for case, body, param in BAD_BODIES
]


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
@pytest.mark.parametrize(
    ("case", "body", "param"), E2E_BAD_BODIES, ids=[c[0] for c in E2E_BAD_BODIES]
)
def test_bad_input_is_a_400(
    http: httpx.Client, path: str, case: str, body: Any, param: str
) -> None:
    response = http.post(path, json=body)
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
def test_prompt_over_the_context_length_is_a_400_not_a_cut(http: httpx.Client, path: str) -> None:
    # Within our character limit but over --max-model-len in tokens: vLLM's own check answers.
    response = http.post(path, json={"text": "北京上海广州" * 450, "labels": ["地点"]})
    assert response.status_code == 400, response.text
    assert "maximum context length" in response.json()["error"]["message"]


def test_server_still_serves_after_bad_inputs(http: httpx.Client) -> None:
    assert http.post("/v1/classify", json=OK).status_code == 200


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract", "/v1/completions", "/v1/models"])
def test_api_key_is_required_on_every_v1_route(server: Any, path: str) -> None:
    method = "GET" if path == "/v1/models" else "POST"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.request(method, f"{server.url}{path}", json=OK, headers=headers)
        assert response.status_code == 401


def test_health_needs_no_key(server: Any) -> None:
    assert httpx.get(f"{server.url}/health").status_code == 200
