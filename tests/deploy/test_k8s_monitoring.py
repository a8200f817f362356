"""deploy/k8s's scaling and monitoring: KEDA scales the server on vLLM's queue and on requests
refused for load (overlays/hpa: the same through prometheus-adapter, for clusters without KEDA),
a PodMonitor scrapes /metrics with the API key, and the alerts an on-call engineer needs hold a
what-to-do each. Every PromQL expression parses, reads only series the server exports (ours or
vLLM's, tests/deploy/promql.py) or that Prometheus and kube-state-metrics do, selects the job
the PodMonitor gives the server's series, and only label values the server sets.
(tests/e2e/test_operations.py checks the series on a running server's /metrics.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from serving.http.observe import _REJECTIONS
from tests.deploy.k8s import RENDERED, container, one
from tests.deploy.promql import ADAPTER, EXTERNAL, expressions, selectors, served_series
from tests.deploy.test_dashboard import our_series, vllm_series

ALERTS = {
    "SeqGPTNoReplicaReady": "critical",
    "SeqGPTEngineDown": "critical",
    "SeqGPTQueueGrowing": "warning",
    "SeqGPTServerErrors": "critical",
    "SeqGPTRejectingForLoad": "warning",
    "SeqGPTTruncatedAnswers": "warning",
}
QUEUE, REJECTIONS = "vllm:num_requests_waiting", "seqgpt_rejections_total"
LOAD_REASONS = {"overloaded", "queue_full"}  # 429 from our bound, 503 from vLLM's queue limit


def _job(objects: list[dict[str, Any]]) -> str:
    """The ``job`` label Prometheus gives the server's series: its pods' jobLabel value."""
    label = one(objects, "PodMonitor")["spec"]["jobLabel"]
    return one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"][label]  # type: ignore[no-any-return]


def _rules() -> list[dict[str, Any]]:
    groups = one(RENDERED["base"], "PrometheusRule")["spec"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _adapter_rules() -> dict[str, dict[str, Any]]:
    rules = yaml.safe_load(ADAPTER.read_text(encoding="utf-8"))["rules"]["custom"]
    return {rule["name"]["as"]: rule for rule in rules}


def test_keda_scales_on_the_queue_and_on_load_rejections_per_replica() -> None:
    spec = one(RENDERED["base"], "ScaledObject")["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 8)
    triggers = {t["name"]: t for t in spec["triggers"]}
    assert {t["type"] for t in triggers.values()} == {"prometheus"}
    # AverageValue: KEDA's HPA divides the query's total by the replicas.
    assert {t["metricType"] for t in triggers.values()} == {"AverageValue"}
    assert {s.metric for s in selectors(triggers["queue"]["metadata"]["query"])} == {QUEUE}
    (rejected,) = selectors(triggers["rejections"]["metadata"]["query"])
    assert rejected.metric == REJECTIONS
    assert ("reason", "Re", "|".join(sorted(LOAD_REASONS))) in rejected.matchers
    assert float(triggers["queue"]["metadata"]["threshold"]) == 10
    assert float(triggers["rejections"]["metadata"]["threshold"]) == 1
    # A Prometheus outage holds the replicas running, never fewer.
    assert spec["fallback"]["behavior"] == "currentReplicasIfHigher"
    assert spec["fallback"]["replicas"] >= spec["minReplicaCount"]


def test_the_hpa_overlay_scales_on_the_same_signals_through_prometheus_adapter() -> None:
    objects = RENDERED["hpa"]
    assert all(obj["kind"] != "ScaledObject" for obj in objects)
    hpa = one(objects, "HorizontalPodAutoscaler")["spec"]
    keda = one(RENDERED["base"], "ScaledObject")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        keda["minReplicaCount"],
        keda["maxReplicaCount"],
    )
    assert hpa["behavior"] == keda["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    targets = {
        m["pods"]["metric"]["name"]: m["pods"]["target"] for m in hpa["metrics"] if "pods" in m
    }
    adapter = _adapter_rules()
    assert set(targets) == set(adapter)  # every metric the HPA asks, the adapter serves
    thresholds = {t["name"]: float(t["metadata"]["threshold"]) for t in keda["triggers"]}
    series = {
        name: {s.metric for s in selectors(rule["seriesQuery"])} for name, rule in adapter.items()
    }
    assert series == {
        "vllm_num_requests_waiting": {QUEUE},
        "seqgpt_load_rejections_per_second": {REJECTIONS},
    }
    assert float(targets["vllm_num_requests_waiting"]["averageValue"]) == thresholds["queue"]
    load = targets["seqgpt_load_rejections_per_second"]
    assert float(load["averageValue"]) == thresholds["rejections"]
    assert (
        f'reason=~"{"|".join(sorted(LOAD_REASONS))}"'
        in adapter["seqgpt_load_rejections_per_second"]["metricsQuery"]
    )
    resources = [m["resource"] for m in hpa["metrics"] if m["type"] == "Resource"]
    assert resources == [
        {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    ]


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_the_podmonitor_scrapes_metrics_with_the_metrics_only_key(variant: str) -> None:
    """Prometheus holds the key that opens GET /metrics only, never an API key."""
    objects = RENDERED[variant]
    (endpoint,) = one(objects, "PodMonitor")["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["port"] in {p["name"] for p in container(objects)["ports"]}
    assert endpoint["path"] == "/metrics"
    env = {v["name"]: v for v in container(objects)["env"]}
    secret = env["SEQGPT_METRICS_KEY"]["valueFrom"]["secretKeyRef"]
    api_secret = env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]
    credentials = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"]["type"] == "Bearer"
    assert (credentials["name"], credentials["key"]) == (secret["name"], secret["key"])
    assert credentials["name"] != api_secret["name"]  # Prometheus may read it, not the API key
    assert one(objects, "ConfigMap")["data"]["SEQGPT_PUBLIC_METRICS"] == "false"  # key needed


@pytest.mark.parametrize("where", sorted(expressions()))
def test_every_expression_parses_and_selects_the_servers_job(where: str) -> None:
    job = _job(RENDERED["base"])
    for selector in selectors(expressions()[where]):  # a syntax error raises here
        labels = {label for label, _, _ in selector.matchers}
        if where.startswith("adapter metricsQuery"):
            assert {"namespace", "pod"} <= labels  # the HPA's own pods, by name
        elif selector.metric not in EXTERNAL or selector.metric == "up":
            assert ("job", "Equal", job) in selector.matchers, (where, selector)


def test_every_series_read_is_the_servers_or_named_external() -> None:
    names = {s.metric for expr in expressions().values() for s in selectors(expr)}
    assert names - set(EXTERNAL) <= our_series() | vllm_series()
    assert served_series() >= {QUEUE, REJECTIONS, "seqgpt_requests_total"}


def test_label_values_selected_are_ones_the_server_sets() -> None:
    statuses = {str(code) for code in range(100, 600)}
    for expr in expressions().values():
        for selector in selectors(expr):
            for label, op, value in selector.matchers:
                if (selector.metric, label) == (REJECTIONS, "reason"):
                    assert op == "Re"
                    assert set(value.split("|")) == LOAD_REASONS
                    assert set(_REJECTIONS.values()) >= LOAD_REASONS
                elif (selector.metric, label) == ("seqgpt_requests_total", "status"):
                    assert {s for s in statuses if re.fullmatch(value, s)}, value


def test_the_alerts_an_on_call_engineer_needs_say_what_to_do() -> None:
    rules = {rule["alert"]: rule for rule in _rules()}
    assert {name: rule["labels"]["severity"] for name, rule in rules.items()} == ALERTS
    for name, rule in rules.items():
        assert re.fullmatch(r"\d+m", rule["for"]), name
        assert set(rule["annotations"]) == {"summary", "description"}, name
        description = rule["annotations"]["description"]
        assert len(description) > 200, name  # what it means and what to check
        assert "`kubectl " in description or "SEQGPT_" in description, name


def test_engine_down_spares_pods_still_starting() -> None:
    (rule,) = [r for r in _rules() if r["alert"] == "SeqGPTEngineDown"]
    deadline = one(RENDERED["base"], "Deployment")["spec"]["progressDeadlineSeconds"]
    assert f"time() - kube_pod_start_time < {deadline}" in " ".join(rule["expr"].split())


def test_the_queue_and_rejection_alerts_fire_above_the_scalers_target() -> None:
    keda = {
        t["name"]: float(t["metadata"]["threshold"])
        for t in one(RENDERED["base"], "ScaledObject")["spec"]["triggers"]
    }
    rules = {rule["alert"]: rule["expr"] for rule in _rules()}
    assert rules["SeqGPTQueueGrowing"].endswith(f"> {2 * keda['queue']:g}")
    assert rules["SeqGPTRejectingForLoad"].endswith(f"> {2 * keda['rejections']:g}")
