"""The gate, limits, overload, deadlines and error bodies, over the fake engine.

The same rules are walked over every route of the real server in tests/e2e/test_reliability.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from argparse import Namespace
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import State
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from serving.contract.limits import CompletionLimits
from serving.core.settings import Settings
from serving.http.gate import Gate
from serving.http.lifecycle import Drain
from serving.plugin import SeqGPTPlugin
from tests.api.fake_engine import FakeEngine

OK = {"text": "今天股市大涨", "labels": ["财经", "体育"]}
KEYS = ["first-key", "second-key"]


def _error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (kind, status)
    return error


@pytest.fixture
def keyed(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(api_keys=KEYS)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "first-key"}],
    ids=["none", "wrong", "no-scheme"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/classify"), ("POST", "/v1/extract"), ("GET", "/no/such/route")],
)
def test_without_a_valid_key_every_path_is_a_401(
    keyed: TestClient, engine: FakeEngine, method: str, path: str, headers: dict[str, str]
) -> None:
    response = keyed.request(method, path, json=OK, headers=headers)
    error = _error(response, 401, "AuthenticationError")
    assert "Authorization: Bearer" in error["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert engine.calls == []


@pytest.mark.parametrize("key", KEYS)
def test_every_configured_key_is_accepted(keyed: TestClient, key: str) -> None:
    response = keyed.post("/v1/classify", json=OK, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text


def test_unknown_route_and_method_have_the_common_body(client: TestClient) -> None:
    error = _error(client.get("/no/such/route"), 404, "NotFoundError")
    assert error["message"] == "There is no such route on this server."
    error = _error(client.get("/v1/classify"), 405, "MethodNotAllowedError")
    assert "GET" in error["message"]


def test_a_body_over_the_limit_is_a_413_before_it_is_parsed(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    client = make_client(max_body_bytes=4096)
    big = {**OK, "text": "x" * 5000}
    error = _error(client.post("/v1/classify", json=big), 413, "RequestTooLargeError")
    assert "4096 bytes" in error["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted while reading
        yield b'{"text": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'", "labels": ["a"]}'

    response = client.post("/v1/classify", content=chunks(), headers={"content-type": "json"})
    _error(response, 413, "RequestTooLargeError")
    assert engine.calls == []


def test_deeply_nested_json_is_a_400_in_the_common_body(client: TestClient) -> None:
    body = "[" * 5000 + "]" * 5000
    response = client.post(
        "/v1/classify", content=body, headers={"content-type": "application/json"}
    )
    _error(response, 400, "BadRequestError")


def test_40000_labels_are_refused_quickly_without_validating_each(
    client: TestClient, engine: FakeEngine
) -> None:
    body = {"text": "a", "labels": [f"标签{i}" for i in range(40_000)]}
    started = time.perf_counter()
    error = _error(client.post("/v1/classify", json=body), 400, "BadRequestError")
    elapsed = time.perf_counter() - started
    assert "40000 labels" in error["message"]
    assert elapsed < 5, elapsed  # was ~9 s of quadratic de-duplication on the event loop
    assert engine.calls == []


async def _post_all(client: TestClient, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await asyncio.gather(*(http.post("/v1/extract", json=b) for b in bodies))


def test_over_the_inflight_bound_is_a_fast_429_with_retry_after(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    client = make_client(max_inflight=13)
    engine.delay = 0.3
    engine.respond = lambda _p, _s: "l0: None"
    labels = [f"l{i}" for i in range(13)]  # 3 prompts each: 4 requests fit, the 5th does not
    responses = asyncio.run(_post_all(client, [{**OK, "labels": labels}] * 6))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 4 + [429] * 2
    for response in responses:
        if response.status_code == 429:
            error = _error(response, 429, "RateLimitError")
            assert "13 prompts in flight" in error["message"]
            assert response.headers["Retry-After"] == "1"
    assert len(engine.calls) == 12
    assert client.app.state.seqgpt.inflight == 0  # type: ignore[attr-defined]


def test_a_request_past_its_deadline_is_a_504_and_its_prompts_are_cancelled(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    client = make_client(request_timeout_s=0.2)
    engine.delay = 5
    labels = [f"l{i}" for i in range(13)]
    started = time.perf_counter()
    error = _error(client.post("/v1/extract", json={**OK, "labels": labels}), 504, "TimeoutError")
    assert time.perf_counter() - started < 3
    assert "0.2 s" in error["message"]
    assert sorted(engine.cancelled) == sorted(c.request_id for c in engine.calls)
    assert len(engine.cancelled) == 3


def test_a_generation_cut_by_its_budget_is_reported_and_its_last_value_dropped(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.finish_reason = "length"
    engine.respond = lambda _p, _s: "人物: 张三\n时间: 2023年5"
    text = "张三于2023年5月1日在北京加入阿里巴巴。"
    data = client.post("/v1/extract", json={"text": text, "labels": ["人物", "时间"]}).json()
    assert data["truncated"] is True
    assert data["fields"] == {"人物": [{"text": "张三", "start": 0, "end": 2}], "时间": []}
    engine.finish_reason = "stop"
    data = client.post("/v1/extract", json={"text": text, "labels": ["人物", "时间"]}).json()
    assert data["truncated"] is False


def test_labels_that_leave_no_room_for_the_text_are_a_400(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    # The fake tokenizer spends one token per character: the extraction prompt's 21 tokens of
    # instruction plus its 256-token answer budget leave nothing of 270 for any text.
    engine.max_model_len = 270
    client = make_client()
    body = {"text": "字" * 190, "labels": ["人物"]}
    error = _error(client.post("/v1/extract", json=body), 400, "BadRequestError")
    assert error["param"] == "labels"
    assert "no room for the text" in error["message"]
    body = {"text": "字" * 190, "labels": ["体育", "财经"]}  # classify needs 8 tokens: fits
    assert client.post("/v1/classify", json=body).status_code == 200
    assert len(engine.calls) == 1


# ---------------------------------------------------------------- the gate alone


async def _downstream(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await PlainTextResponse(f"reached {len(body)}")(scope, receive, send)


def _gate_client(keys: list[str] | None = None) -> TestClient:
    gate = Gate(
        _downstream,
        keys=keys or [],
        open_paths={("GET", "/health")},
        max_body_bytes=10_000,
        limits=CompletionLimits(max_tokens=100, n=2, logprobs=5),
        drain=Drain(timeout_s=1),
    )
    return TestClient(gate)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 101), ("n", 3), ("best_of", 9), ("logprobs", 6), ("top_logprobs", 20)],
)
@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions", "/invocations"])
def test_completion_cost_parameters_over_the_limits_are_a_400(
    path: str, field: str, value: int
) -> None:
    response = _gate_client().post(path, json={"prompt": "x", field: value})
    error = _error(response, 400, "BadRequestError")
    assert error["param"] == field
    assert f"'{field}' is {value}" in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", "64"),
        ("n", 64.0),
        ("best_of", " 9 "),
        ("max_tokens", 2000.0),
        ("max_completion_tokens", "2000.0"),
        ("logprobs", 20.0),
        ("top_logprobs", "20"),
    ],
)
def test_a_number_spelt_as_a_string_or_a_float_is_checked_as_the_integer_vllm_reads(
    field: str, value: object
) -> None:
    response = _gate_client().post("/v1/completions", json={"prompt": "x", field: value})
    assert _error(response, 400, "BadRequestError")["param"] == field


@pytest.mark.parametrize("value", ["two", 1.5, "1e3", [3], {"n": 3}])
def test_a_value_vllm_would_not_read_as_an_integer_is_left_to_vllm(value: object) -> None:
    body = json.dumps({"prompt": "x", "n": value})
    assert _gate_client().post("/v1/completions", content=body).text == f"reached {len(body)}"


def test_completion_bodies_within_the_limits_reach_the_route_whole() -> None:
    body = json.dumps({"prompt": "x", "max_tokens": 100, "n": 2, "logprobs": True})
    response = _gate_client().post("/v1/chat/completions", content=body)
    assert response.text == f"reached {len(body)}"


def test_open_paths_and_cors_preflights_pass_without_the_key() -> None:
    client = _gate_client(keys=["k"])
    assert client.get("/health").text == "reached 0"
    preflight = {"Origin": "http://a.example", "Access-Control-Request-Method": "POST"}
    assert client.options("/v1/classify", headers=preflight).status_code == 200
    assert client.options("/v1/classify").status_code == 401
    # No Origin: no preflight (CORS would pass it on to the route), so the key is needed.
    no_origin = {"Access-Control-Request-Method": "GET"}
    assert client.options("/metrics", headers=no_origin).status_code == 401


@pytest.mark.parametrize(
    ("host", "keys", "warned"),
    [
        ("0.0.0.0", [], True),
        (None, [], True),  # every interface
        ("10.1.2.3", [], True),
        ("seqgpt.internal", [], True),  # a name may resolve to any interface
        ("127.0.0.1", [], False),
        ("::1", [], False),
        ("localhost", [], False),
        ("0.0.0.0", ["k"], False),
    ],
)
def test_a_server_open_to_the_network_without_a_key_says_so_at_start(
    engine: FakeEngine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    host: str | None,
    keys: list[str],
    warned: bool,
) -> None:
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    logger = logging.getLogger("serving.plugin")
    logger.addHandler(caplog.handler)  # ours may not propagate (it logs where vLLM does)
    try:
        args = Namespace(log_error_stack=False, api_key=keys or None, host=host, port=8000)
        asyncio.run(SeqGPTPlugin(settings).init_state(engine, State(), args))
    finally:
        logger.removeHandler(caplog.handler)
    said = [r.getMessage() for r in caplog.records if "no API key is set" in r.getMessage()]
    assert bool(said) == warned, said


def test_a_body_that_trickles_past_the_deadline_is_a_408_and_closes() -> None:
    gate = Gate(
        _downstream,
        keys=[],
        open_paths=set(),
        max_body_bytes=10_000,
        limits=CompletionLimits(max_tokens=100, n=2, logprobs=5),
        drain=Drain(timeout_s=1),
        body_timeout_s=0.2,
    )
    sent: list[Message] = []
    parts = iter([{"type": "http.request", "body": b"{", "more_body": True}])

    async def receive() -> Message:
        part = next(parts, None)
        if part is None:
            await asyncio.sleep(3600)  # the rest never comes
        return part or {}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/classify", "headers": []}
    started = time.monotonic()
    asyncio.run(gate(scope, receive, send))
    assert time.monotonic() - started < 2
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["type"] == "RequestTimeoutError"
