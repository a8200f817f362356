"""Tenants through the real plugin over a fake engine: scopes (403 vs 401), the tenant handed on
to admission, per-tenant limits (429, Retry-After, OpenAI's headers, prompt tokens charged after
the work), the tenant label and log field, and the UI login's ``ui`` scope."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from serving.core.settings import Settings
from serving.core.tenants import key_digest
from tests.api.conftest import build_app
from tests.api.fake_engine import FakeEngine

API_KEY = "plain-api-key"
TASKS, COMPLETIONS, UI, LIMITED, TOKENS = "tasks-key", "comp-key", "ui-key", "lim-key", "tok-key"
CLASSIFY = {"text": "张三在北京", "labels": ["人物", "地点"]}
COMPLETION = {"model": "seqgpt", "prompt": "hello", "max_tokens": 2}
FILE = f"""
[tenants.search]
key_sha256 = "{key_digest(TASKS)}"
scopes = ["tasks"]

[tenants.chat]
key_sha256 = "{key_digest(COMPLETIONS)}"
scopes = ["completions"]

[tenants.people]
key_sha256 = "{key_digest(UI)}"
scopes = ["ui", "tasks"]

[tenants.small]
key_sha256 = "{key_digest(LIMITED)}"
scopes = ["tasks"]
requests_per_minute = 3

[tenants.thrifty]
key_sha256 = "{key_digest(TOKENS)}"
scopes = ["tasks", "completions"]
prompt_tokens_per_minute = 1

[tenants.kiosk]
key_sha256 = "{key_digest("kiosk-key")}"
scopes = ["ui"]
requests_per_minute = 1
"""


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = tmp_path_factory.mktemp("tenants") / "tenants.toml"
    path.write_text(FILE)
    settings = Settings(ui=True, tenants_file=path, request_log=True)  # type: ignore[call-arg]
    app = build_app(FakeEngine(), settings, [API_KEY])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _sample(name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _error(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status
    return str(error["message"])


def test_a_key_reaches_its_scopes_only(server: TestClient) -> None:
    assert server.post("/v1/classify", headers=_auth(TASKS), json=CLASSIFY).status_code == 200
    assert "'completions'" in _error(
        server.post("/v1/completions", headers=_auth(TASKS), json=COMPLETION), 403
    )
    _error(server.get("/metrics", headers=_auth(TASKS)), 403)
    _error(server.post("/v1/classify", headers=_auth(COMPLETIONS), json=CLASSIFY), 403)
    # vLLM's routes are not in this app: past the gate they are a 404, not a 401 or 403.
    assert server.get("/v1/models", headers=_auth(COMPLETIONS)).status_code == 404
    assert server.get("/version", headers=_auth(TASKS)).status_code == 404  # any key
    _error(server.post("/v1/classify", headers=_auth("unknown"), json=CLASSIFY), 401)
    assert server.post("/v1/classify", headers=_auth(API_KEY), json=CLASSIFY).status_code == 200
    assert server.get("/health", headers=_auth(TASKS)).status_code == 404  # open: any key


def test_the_tenant_is_counted_and_logged_by_name(
    server: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    before = _sample("seqgpt_requests_total", task="classify", status="200", tenant="search")
    with caplog.at_level(logging.INFO, "seqgpt.requests"):
        assert server.post("/v1/classify", headers=_auth(TASKS), json=CLASSIFY).status_code == 200
    after = _sample("seqgpt_requests_total", task="classify", status="200", tenant="search")
    assert after == before + 1
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "seqgpt.requests"]
    assert lines[-1]["tenant"] == "search"
    assert TASKS not in caplog.text
    server.post("/v1/classify", headers=_auth("unknown"), json=CLASSIFY)
    assert _sample("seqgpt_rejections_total", reason="unauthorized", tenant="-") >= 1
    server.post("/v1/classify", headers=_auth(COMPLETIONS), json=CLASSIFY)
    assert _sample("seqgpt_rejections_total", reason="forbidden", tenant="chat") >= 1


def test_a_limited_tenant_gets_the_headers_then_a_429(server: TestClient) -> None:
    answers = [server.post("/v1/classify", headers=_auth(LIMITED), json=CLASSIFY) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers[:3]] == ["2", "1", "0"]
    assert all(a.headers["x-ratelimit-limit-requests"] == "3" for a in answers)
    assert answers[2].headers["x-ratelimit-reset-requests"].endswith("s")
    refused = answers[3]
    assert "'small'" in _error(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 20  # a token every 20 s
    plain = server.post("/v1/classify", headers=_auth(API_KEY), json=CLASSIFY)
    assert "x-ratelimit-limit-requests" not in plain.headers  # no limit, no headers


def test_prompt_tokens_are_charged_after_the_work(server: TestClient) -> None:
    first = server.post("/v1/classify", headers=_auth(TOKENS), json=CLASSIFY)
    assert first.status_code == 200, first.text
    assert first.headers["x-ratelimit-remaining-tokens"] == "1"  # said before the charge
    second = server.post("/v1/classify", headers=_auth(TOKENS), json=CLASSIFY)
    _error(second, 429)  # the first one's prompts put the bucket in debt
    assert second.headers["x-ratelimit-remaining-tokens"] == "0"
    assert int(second.headers["retry-after"]) > 60  # many prompt tokens at 1 a minute


def test_the_login_takes_a_key_with_the_ui_scope(server: TestClient) -> None:
    denied = server.post("/ui/login", data={"key": TASKS}, follow_redirects=False)
    assert "'search'" in _error(denied, 403)
    assert "set-cookie" not in denied.headers
    assert server.post("/ui/login", data={"key": "nope"}).status_code == 401
    server.cookies.clear()
    admitted = server.post("/ui/login", data={"key": UI}, follow_redirects=False)
    assert admitted.status_code == 303
    assert server.get("/ui/", follow_redirects=False).status_code == 200
    server.cookies.clear()
    assert server.get("/ui/", headers=_auth(TASKS), follow_redirects=False).status_code == 403


def test_a_login_counts_to_its_tenants_limit(server: TestClient) -> None:
    server.cookies.clear()
    first = server.post("/ui/login", data={"key": "kiosk-key"}, follow_redirects=False)
    assert first.status_code == 303
    server.cookies.clear()
    second = server.post("/ui/login", data={"key": "kiosk-key"}, follow_redirects=False)
    assert "'kiosk'" in _error(second, 429)
    assert "set-cookie" not in second.headers
