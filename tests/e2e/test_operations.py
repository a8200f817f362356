"""Operations against a real server: request ids, task metrics on vLLM's /metrics (every series
deploy/k8s's scaler and alerts read among them), the request log and the audit log, the status
route, and (last) a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.server import ServerProcess
from tests.deploy.promql import served_series
from tests.servers import DTYPE, measure_pace, paused_engine, tiny_server

KEY = "operations-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SECRET = "运维机密QX9"
BUDGET = 64  # tokens per extraction prompt: the random model never ends one before it
# Long enough for the stop test's extractions to end inside it on a slow machine too (it waits
# for them); the drain ends as soon as they have.
DRAIN_S = 120
IN_FLIGHT = 3  # extractions in flight when the stop test's SIGTERM comes


@pytest.fixture(scope="module")
def ops(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("operations")
    env = {
        "SEQGPT_MAX_NEW_TOKENS": str(BUDGET),
        "SEQGPT_AUDIT_LOG": str(folder / "audit.jsonl"),
        "SEQGPT_DRAIN_TIMEOUT_S": str(DRAIN_S),
    }
    with tiny_server(tiny_model, api_key=KEY, env=env, log_path=folder / "server.log") as srv:
        yield srv


@pytest.fixture
def http(ops: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ops.url, headers=AUTH, timeout=60) as client:
        yield client


def _metric(http: httpx.Client, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def test_task_responses_carry_the_request_id(http: httpx.Client) -> None:
    body = {"text": "今天股市大涨", "labels": ["财经", "体育"]}
    response = http.post("/v1/classify", json=body, headers={"X-Request-Id": "ops-e2e-1"})
    assert response.headers["x-request-id"] == "ops-e2e-1"
    fresh = http.post("/v1/classify", json=body).headers["x-request-id"]
    assert len(fresh) == 32


def test_task_metrics_are_on_vllms_metrics_route(http: httpx.Client) -> None:
    before = _metric(http, "seqgpt_requests_total", task="classify", status="200")
    rejected = _metric(http, "seqgpt_rejections_total", reason="invalid_input")
    http.post("/v1/classify", json={"text": "今天股市大涨", "labels": ["财经", "体育"]})
    http.post("/v1/classify", json={"text": "", "labels": ["财经"]})
    assert _metric(http, "seqgpt_requests_total", task="classify", status="200") == before + 1
    assert _metric(http, "seqgpt_rejections_total", reason="invalid_input") == rejected + 1
    assert _metric(http, "seqgpt_request_duration_seconds_count", task="classify") >= 1
    assert _metric(http, "vllm:num_requests_running") == 0  # vLLM's own, in the same response


def test_every_series_the_kubernetes_scaler_and_alerts_read_is_served(http: httpx.Client) -> None:
    # A labelled counter shows only once counted: an answer, a refusal, an answer cut short
    # (the tiny model never stops by itself: every extraction runs to its budget).
    assert http.post("/v1/classify", json={"text": "今天股市大涨", "labels": ["财经"]}).is_success
    assert http.post("/v1/classify", json={"text": "", "labels": ["财经"]}).status_code == 400
    assert http.post("/v1/extract", json={"text": "张三在北京", "labels": ["人物"]}).json()[
        "truncated"
    ]
    families = text_string_to_metric_families(http.get("/metrics").text)
    exported = {sample.name for family in families for sample in family.samples}
    assert served_series() - exported == set()


def _log_lines(ops: ServerProcess, request_id: str) -> list[dict[str, Any]]:
    """The request log lines of ``request_id``; the line is written after the response is
    sent, so it may reach the log a moment after the client has its answer."""
    deadline = time.monotonic() + 10
    while True:
        log = ops.log_path.read_text(encoding="utf-8")  # type: ignore[union-attr]
        marker = f'"request_id": "{request_id}"'
        lines = [json.loads(line) for line in log.splitlines() if marker in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_one_request_log_line_and_an_audit_entry_per_task_request(
    ops: ServerProcess, http: httpx.Client
) -> None:
    body = {"text": f"{SECRET}在北京", "labels": ["地点"]}
    response = http.post("/v1/extract", json=body, headers={"X-Request-Id": "ops-audit-1"})
    assert response.status_code == 200
    lines = _log_lines(ops, "ops-audit-1")
    assert len(lines) == 1
    assert (lines[0]["task"], lines[0]["status"], lines[0]["labels"]) == ("extract", 200, 1)
    assert SECRET not in ops.log_path.read_text(encoding="utf-8")  # type: ignore[union-attr]
    audit = Path(ops.env["SEQGPT_AUDIT_LOG"])
    deadline = time.monotonic() + 10
    while "ops-audit-1" not in (audit.read_text(encoding="utf-8") if audit.exists() else ""):
        assert time.monotonic() < deadline, "no audit entry"
        time.sleep(0.1)
    entries = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    (entry,) = [e for e in entries if e["request_id"] == "ops-audit-1"]
    assert entry["text"] == body["text"]
    assert entry["result"]["fields"] == response.json()["fields"]
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600  # users' texts: the server's user only


def test_status_says_healthy_model_and_device(http: httpx.Client) -> None:
    status = http.get("/v1/status").json()
    assert status["healthy"] is True
    assert status["model"] == "seqgpt"
    assert status["device"] == "cpu"
    assert status["dtype"] == DTYPE  # the engine's: given by --dtype, whatever the CPU's choice
    assert status["draining"] is False


# ---------------------------------------------------------------- graceful stop (last)


async def _until(probe: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def _stop_under_load(
    ops: ServerProcess, timeout: float
) -> tuple[list[httpx.Response], list[int]]:
    """Three extractions in flight, then SIGTERM; what new requests get while the server drains,
    and the extractions' answers. The engine is held still (``paused_engine``) from before the
    extractions are sent until the refusals are in: they are surely in flight, on any machine."""
    async with httpx.AsyncClient(base_url=ops.url, headers=AUTH, timeout=timeout) as client:

        async def admitted() -> bool:  # one prompt each (one label)
            return (await client.get("/v1/status")).json()["inflight_prompts"] == IN_FLIGHT

        async def draining() -> bool:  # /health, like any new request, is refused then
            return (await client.get("/health")).status_code == 503

        body = {"text": "张三于2023年5月1日在北京加入阿里巴巴。", "labels": ["人物"]}
        with paused_engine(ops):
            inflight = [
                asyncio.ensure_future(client.post("/v1/extract", json=body))
                for _ in range(IN_FLIGHT)
            ]
            await _until(admitted, timeout, "the extractions were never admitted")
            os.kill(ops.pid, signal.SIGTERM)
            await _until(draining, timeout, "the server never began to drain")
            new = {"text": "a", "labels": ["x"]}
            refused = [(await client.post("/v1/classify", json=new)).status_code for _ in range(3)]
            assert not any(task.done() for task in inflight), "answered with the engine held"
        return list(await asyncio.gather(*inflight)), refused


def test_sigterm_finishes_requests_in_flight_and_refuses_new_ones_until_exit(
    ops: ServerProcess,
) -> None:
    pace = measure_pace(ops.url, AUTH)
    answered, refused = asyncio.run(_stop_under_load(ops, pace(60)))
    assert [r.status_code for r in answered] == [200] * IN_FLIGHT
    assert all(r.json()["truncated"] for r in answered)  # they ran to their full budget
    assert refused == [503] * 3
    assert ops.wait(timeout=pace(60)) == 0
