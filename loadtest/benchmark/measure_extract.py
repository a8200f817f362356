"""The benchmark's extraction measurements (item 3): chunk latency and prefix caching."""

from __future__ import annotations

from statistics import median
from typing import Any

import httpx
import numpy as np

from loadtest.benchmark.driver import median_of, run_cell
from loadtest.benchmark.measure import Bench
from loadtest.checks import check_extract

__all__ = ["measure_extract_latency", "measure_extract_throughput", "pool_singles"]


def pool_singles(samples: list[dict[str, float]]) -> dict[str, float]:
    """Single-request runs combined: latency percentiles over all of them."""
    latencies = [s["p50"] for s in samples if not s["errors"]]
    return {
        "p50": float(np.percentile(latencies, 50)),
        "p95": float(np.percentile(latencies, 95)),
        "prompt_tokens": float(np.mean([s["prompt_tokens"] for s in samples])),
        "completion_tokens": float(np.mean([s["completion_tokens"] for s in samples])),
        "errors": float(sum(s["errors"] for s in samples)),
        "n": float(len(samples)),
    }


def measure_extract_latency(bench: Bench, url: str) -> dict[str, Any]:
    """Item 3a: a 13-label extraction (3 chunks) against a 6-label one, one at a time; each
    text is sent with both label sets back to back (order alternating) and the ratio is the
    median of the per-text ratios."""
    samples: dict[str, list[dict[str, float]]] = {"6": [], "13": []}
    ratios = []
    for repeat in range(bench.plan.repeats):
        for i, entry in enumerate(bench.take(bench.plan.extract_latency_n)):
            widths = ("6", "13") if (repeat + i) % 2 == 0 else ("13", "6")
            pair = {
                width: run_cell(url, "/v1/extract", bench.work.extract([entry], int(width)), 1,
                                check_extract)
                for width in widths
            }  # fmt: skip
            for width in widths:
                samples[width].append(pair[width])
            ratios.append(pair["13"]["p50"] / pair["6"]["p50"])
        recent = ratios[-bench.plan.extract_latency_n :]
        bench.log(f"3. 13 vs 6 labels #{repeat + 1}: per-text ratios {_fmt(recent)}")
    result = {width: pool_singles(runs) for width, runs in samples.items()}
    result["13"]["paired_ratio"] = median(ratios)
    return result


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _prefix_counters(url: str) -> tuple[float, float]:
    """vLLM's prefix-cache (hits, queries) token counters from ``/metrics``."""
    totals = {"vllm:prefix_cache_hits_total": 0.0, "vllm:prefix_cache_queries_total": 0.0}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals["vllm:prefix_cache_hits_total"], totals["vllm:prefix_cache_queries_total"]


def measure_extract_throughput(
    bench: Bench, url: str, entries: list[list[Any]], name: str
) -> dict[str, float]:
    """Item 3b: 13-label extractions at a fixed concurrency (run once per cache setting), and
    the share of prompt tokens the prefix cache served."""
    c = bench.plan.extract_throughput_concurrency
    hits, queries = _prefix_counters(url)
    runs = []
    for i, batch in enumerate(entries):
        bodies = bench.work.extract(batch, 13)
        runs.append(bench.cell(url, "extract", bodies, c, f"3. throughput {name} #{i + 1}"))
    after_hits, after_queries = _prefix_counters(url)
    result = median_of(runs)
    result["prefix_hit_rate"] = (after_hits - hits) / max(after_queries - queries, 1.0)
    return result
