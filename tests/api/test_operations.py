"""Request ids, task metrics, the request log, the audit log, the status route and the drain,
over the fake engine. The same behaviours against the real server: tests/e2e/test_operations.py."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from serving.core.cpu import cpu_facts
from tests.api.fake_engine import FakeEngine

TEXT = "张三在北京"
CLASSIFY = {"text": TEXT, "labels": ["人物", "地点"]}


def _sample(name: str, **labels: str) -> float:
    """The sum of ``name``'s samples with ``labels`` (whatever their other labels: the tenant)."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_a_sane_client_request_id_is_echoed_and_prefixes_the_engine_ids(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "人物: 张三"
    labels = [f"l{i}" for i in range(13)]
    response = client.post(
        "/v1/extract", json={"text": TEXT, "labels": labels}, headers={"X-Request-Id": "job-42.a"}
    )
    assert response.headers["x-request-id"] == "job-42.a"
    assert len(engine.calls) == 3
    assert all(call.request_id.startswith("job-42.a-") for call in engine.calls)
    assert len({call.request_id for call in engine.calls}) == 3


@pytest.mark.parametrize("sent", [None, "", "x" * 129, "bad id", "a/b", "<script>"])
def test_a_missing_or_odd_request_id_is_replaced_by_a_new_one(
    client: TestClient, sent: str | None
) -> None:
    headers = {} if sent is None else {"X-Request-Id": sent}
    first = client.post("/v1/classify", json=CLASSIFY, headers=headers).headers["x-request-id"]
    second = client.post("/v1/classify", json=CLASSIFY, headers=headers).headers["x-request-id"]
    assert first != second
    assert len(first) == 32


def test_errors_carry_the_request_id_too(client: TestClient) -> None:
    response = client.post("/v1/classify", json={"text": ""}, headers={"X-Request-Id": "e-1"})
    assert response.status_code == 400
    assert response.headers["x-request-id"] == "e-1"


def _counts() -> dict[str, float]:
    return {
        "ok": _sample("seqgpt_requests_total", task="extract", status="200"),
        "bad": _sample("seqgpt_requests_total", task="classify", status="400"),
        "labels": _sample("seqgpt_labels_per_request_sum", task="extract"),
        "prompts": _sample("seqgpt_prompts_per_request_sum", task="extract"),
        "ungrounded": _sample("seqgpt_ungrounded_values_total", task="extract"),
        "unparsed": _sample("seqgpt_unparsed_answers_total", task="classify"),
        "invalid": _sample("seqgpt_rejections_total", reason="invalid_input"),
        "cut": _sample("seqgpt_truncated_answers_total", task="extract"),
    }


def test_task_metrics_count_requests_sizes_and_outcomes(
    client: TestClient, engine: FakeEngine
) -> None:
    before = _counts()
    engine.respond = lambda _p, _s: "l0: 李四"
    engine.finish_reason = "length"
    labels = [f"l{i}" for i in range(13)]
    assert client.post("/v1/extract", json={"text": TEXT, "labels": labels}).status_code == 200
    engine.respond = lambda _p, _s: "天气"
    engine.finish_reason = "stop"
    assert client.post("/v1/classify", json=CLASSIFY).status_code == 200
    assert client.post("/v1/classify", json={**CLASSIFY, "text": ""}).status_code == 400
    after = _counts()
    delta = {key: after[key] - before[key] for key in before}
    # The cut-short answers' only line was their unfinished last one: not a value.
    assert delta == {
        "ok": 1,
        "bad": 1,
        "labels": 13,
        "prompts": 3,
        "ungrounded": 0,
        "unparsed": 1,
        "invalid": 1,
        "cut": 1,
    }
    assert _sample("seqgpt_request_duration_seconds_count", task="classify") > 0


def test_one_json_log_line_per_task_request_without_text_or_labels(
    client: TestClient, engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    engine.respond = lambda _p, _s: "人物"
    secret = "机密文本ZX81"
    with caplog.at_level(logging.INFO, logger="seqgpt.requests"):
        client.post(
            "/v1/classify",
            json={"text": secret, "labels": [f"{secret}甲", "乙"], "multi_label": True},
            headers={"X-Request-Id": "log-1"},
        )
    (record,) = [r for r in caplog.records if r.name == "seqgpt.requests"]
    line = json.loads(record.getMessage())
    assert line["request_id"] == "log-1"
    assert (line["task"], line["status"], line["labels"], line["prompts"]) == (
        "classify_multi",
        200,
        2,
        1,
    )
    assert line["text_chars"] == len(secret)
    assert line["latency_ms"] >= 0
    assert line["pid"] == os.getpid()  # which API process answered, with several
    assert secret not in record.getMessage()


def test_the_audit_log_is_off_by_default_and_traces_an_answer_when_on(
    make_client: Callable[..., TestClient], engine: FakeEngine, tmp_path: Path
) -> None:
    audit = tmp_path / "audit" / "seqgpt.jsonl"
    client = make_client(audit_log=audit)
    engine.respond = lambda _p, _s: "人物: 张三"
    client.post(
        "/v1/extract", json={"text": TEXT, "labels": ["人物"]}, headers={"X-Request-Id": "a-7"}
    )
    client.app.state.seqgpt_observation.audit.close()  # type: ignore[attr-defined]
    (entry,) = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert entry["request_id"] == "a-7"
    assert (entry["text"], entry["labels"], entry["generations"]) == (
        TEXT,
        ["人物"],
        ["人物: 张三"],
    )
    assert entry["result"]["fields"]["人物"] == [{"text": "张三", "start": 0, "end": 2}]


def test_status_reports_model_device_and_load(client: TestClient, engine: FakeEngine) -> None:
    status = client.get("/v1/status").json()
    assert status["healthy"] is True
    assert status["device"] == "cpu"
    assert status["dtype"] == "float32"  # the engine's model_config's
    assert status["cpu"] == str(cpu_facts())
    engine.dtype = torch.bfloat16
    assert client.get("/v1/status").json()["dtype"] == "bfloat16"
    assert (status["inflight_prompts"], status["max_inflight_prompts"]) == (0, 16)
    assert status["draining"] is False
    assert (status["api_processes"], status["pid"]) == (1, os.getpid())  # the one that answered
    engine.errored = True
    assert client.get("/v1/status").json()["healthy"] is False


def test_while_draining_every_request_but_metrics_gets_a_503(client: TestClient) -> None:
    client.app.state.seqgpt_drain.draining = True  # type: ignore[attr-defined]
    for method, path in [("POST", "/v1/classify"), ("GET", "/health"), ("GET", "/v1/status")]:
        response = client.request(method, path, json=CLASSIFY)
        assert response.status_code == 503, path
        assert response.json()["error"]["type"] == "ServiceUnavailableError"
        assert response.headers["Retry-After"] == "1"
    assert client.get("/metrics").status_code != 503
