"""Every PromQL expression deploy/k8s holds, and the series each one reads.

The expressions are the ScaledObject's queries, the PrometheusRule's alerts and the
prometheus-adapter rules of overlays/hpa (their ``<<.Series>>`` templates filled in as the
adapter fills them). ``promql_parser`` (the Rust parser of GreptimeTeam's promql-parser) parses
each one, so a syntax error fails here rather than in Prometheus, and the series are read from
the syntax tree, not guessed by a pattern. Series the server does not export are allowed only
when ``EXTERNAL`` names where they come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import promql_parser
import yaml

from tests.deploy.k8s import K8S, RENDERED, one

__all__ = ["ADAPTER", "EXTERNAL", "Selector", "expressions", "selectors", "served_series"]

ADAPTER = K8S / "overlays" / "hpa" / "prometheus-adapter.values.yaml"
# Series the rules read that the server does not export, and who does.
EXTERNAL = {
    "up": "Prometheus itself, one per target it scrapes (1: the scrape answered)",
    "kube_deployment_status_replicas_available": "kube-state-metrics",
    "kube_pod_start_time": "kube-state-metrics",
}


@dataclass(frozen=True)
class Selector:
    """One series selector of an expression: its metric and label matchers (name, op, value)."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...]


def _adapter_query(rule: dict[str, Any]) -> str:
    """A rule's metricsQuery as prometheus-adapter sends it for one pod."""
    (series,) = {s.metric for s in selectors(rule["seriesQuery"])}
    query: str = rule["metricsQuery"]
    for template, value in [
        ("<<.Series>>", series),
        ("<<.LabelMatchers>>", 'namespace="default",pod="seqgpt-0"'),
        ("<<.GroupBy>>", "pod"),
    ]:
        query = query.replace(template, value)
    return query


def expressions() -> dict[str, str]:
    """Where each expression is (a readable id) -> the expression."""
    found: dict[str, str] = {}
    scaler = one(RENDERED["base"], "ScaledObject")
    for trigger in scaler["spec"]["triggers"]:
        found[f"ScaledObject trigger {trigger['name']}"] = trigger["metadata"]["query"]
    for group in one(RENDERED["base"], "PrometheusRule")["spec"]["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = rule["expr"]
    rules = yaml.safe_load(ADAPTER.read_text(encoding="utf-8"))["rules"]["custom"]
    for rule in rules:
        found[f"adapter seriesQuery {rule['name']['as']}"] = rule["seriesQuery"]
        found[f"adapter metricsQuery {rule['name']['as']}"] = _adapter_query(rule)
    return found


def selectors(expr: str) -> list[Selector]:
    """Every series selector in ``expr`` (a ValueError when it does not parse)."""
    found: list[Selector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr}"
            matchers = tuple(
                (m.name, str(m.op).rpartition(".")[2], m.value) for m in node.matchers.matchers
            )
            found.append(Selector(node.name, matchers))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def served_series() -> set[str]:
    """The series the expressions read that the server's /metrics must carry."""
    names = {s.metric for expr in expressions().values() for s in selectors(expr)}
    return names - set(EXTERNAL)
