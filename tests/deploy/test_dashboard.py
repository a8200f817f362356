"""deploy/grafana/seqgpt-dashboard.json: it parses, its data source is a variable, and every
series its PromQL names is one of ours (the list the serving side exports) or one vLLM's metric
loggers really register, under the names Prometheus gives them."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "seqgpt-dashboard.json"

# The serving side's metrics, by Prometheus type (their names as exported).
OURS = {
    "counter": [
        "seqgpt_requests_total",
        "seqgpt_unparsed_answers_total",
        "seqgpt_ungrounded_values_total",
        "seqgpt_truncated_answers_total",
        "seqgpt_rejections_total",
    ],
    "histogram": [
        "seqgpt_request_duration_seconds",
        "seqgpt_labels_per_request",
        "seqgpt_prompts_per_request",
    ],
}
# vLLM's metrics the dashboard must show, as Prometheus series.
REQUIRED_VLLM = {
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:e2e_request_latency_seconds_bucket",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:kv_cache_usage_perc",
}
_SUFFIXES = {"gauge": [""], "counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and"}
_PROMQL_WORDS |= {"or", "unless", "offset", "inf", "nan"}


def series(kind: str, name: str) -> set[str]:
    """The series a prometheus_client metric of ``kind`` named ``name`` exports."""
    base = name.removesuffix("_total") if kind == "counter" else name
    return {base + suffix for suffix in _SUFFIXES[kind]}


def vllm_series() -> set[str]:
    """Every series vLLM's Prometheus logger registers (read from its installed source)."""
    spec = importlib.util.find_spec("vllm")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    source = (Path(spec.submodule_search_locations[0]) / "v1/metrics/loggers.py").read_text()
    found = re.findall(r'self\._(counter|gauge|histogram)_cls\(\s*name="(vllm:\w+)"', source)
    assert len(found) == source.count('name="vllm:'), "a metric registered another way"
    return {name for kind, name in found for name in series(kind, name)}


def our_series() -> set[str]:
    return {s for kind, names in OURS.items() for name in names for s in series(kind, name)}


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def graphs(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # matchers, ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"(?<![\w:$.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {name for name in names if name.lower() not in _PROMQL_WORDS}


def dashboard_metric_names() -> set[str]:
    """Every metric name the dashboard's queries read."""
    exprs = [target["expr"] for panel in graphs(load()) for target in panel["targets"]]
    return {name for expr in exprs for name in metric_names(expr)}


def test_metric_names_finds_names_not_functions_labels_or_variables() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, task) (rate(seqgpt_x_bucket{a=~"$i", '
        's!~"2.."}[$__rate_interval]))) / on (task) sum(vllm:y) or vector(0)'
    )
    assert metric_names(expr) == {"seqgpt_x_bucket", "vllm:y"}


def test_every_series_is_ours_or_one_vllm_registers() -> None:
    unknown = dashboard_metric_names() - our_series() - vllm_series()
    assert unknown == set()


def test_the_required_series_are_all_shown() -> None:
    shown = dashboard_metric_names()
    assert shown >= REQUIRED_VLLM
    assert vllm_series() >= REQUIRED_VLLM
    for kind, names in OURS.items():
        for name in names:
            assert series(kind, name) & shown, name


def test_the_data_source_is_a_variable_everywhere() -> None:
    dashboard = load()
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    source = {"type": "prometheus", "uid": "${datasource}"}
    assert variables["instance"]["datasource"] == source
    for panel in graphs(dashboard):
        assert panel["datasource"] == source, panel["title"]
        assert all(target["datasource"] == source for target in panel["targets"])


@pytest.mark.parametrize("field", ["id", "title"])
def test_panels_are_distinct(field: str) -> None:
    values = [panel[field] for panel in load()["panels"]]
    assert len(values) == len(set(values))


def test_every_query_filters_by_the_instance_variable() -> None:
    for panel in graphs(load()):
        for target in panel["targets"]:
            for selector in re.findall(r"[\w:]+\{[^}]*\}", target["expr"]):
                assert 'instance=~"$instance"' in selector, (panel["title"], selector)
