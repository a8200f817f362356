"""API_BENCHMARK.md's text: the engine's CPU per request beside the API process's."""

from __future__ import annotations

from typing import Any

from loadtest.api_cost import summary
from loadtest.api_cost_report import report


def _run(rps: float, cpu_ms: float, engine_cpu_ms: float) -> dict[str, float]:
    return {"rps": rps, "cpu_ms": cpu_ms, "engine_cpu_ms": engine_cpu_ms, "cpu_share": 1.0}


RESULTS: dict[str, Any] = {
    "meta": {
        "commit": "abc1234",
        "cpu": "AMD EPYC",
        "cores": 2,
        "load_average": [1.0, 1.0, 1.0],
    },
    "args": {"size": "tiny", "dtype": "float32", "clients": "64", "requests": "640"}
    | {"repeats": "2"},
    "capability": "AVX512",
    "one": {
        "classify": [_run(300.0, 1.6, 5.0) | {"n": 640, "errors": 0}] * 2,
        "raw": [_run(320.0, 1.6, 4.0) | {"n": 640, "errors": 0}] * 2,
    },
}


def test_the_report_puts_the_engines_cpu_beside_the_api_process_and_pairs_every_figure() -> None:
    text = report(RESULTS)
    assert "| `/v1/classify` | 300.0 | 1.60 | 5.00 |" in text
    assert "| same prompt on `/v1/completions` | 320.0 | 1.60 | 4.00 |" in text
    assert "| ours ÷ completions (median of paired runs) | **0.94** | **1.00** | **1.25** |" in text
    assert "torch kernel set AVX512" in text
    figures = summary(RESULTS)
    assert figures["engine_cpu_ms"] == {"classify": 5.0, "completions": 4.0}
    assert (figures["ratio"], figures["engine_ratio"]) == (1.0, 1.25)
    assert figures["rps_ratio"] == 300.0 / 320.0
