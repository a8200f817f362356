"""The benchmark's measurements, one function per item of the report.

Each runs against a live server URL and returns medians over ``plan.repeats`` runs. Corpus
entries are taken in order from a shuffled corpus, so every run sees fresh texts, and the two
sides of a comparison see the same texts.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import httpx
import numpy as np

from loadtest.benchmark.driver import median_of, run_cell
from loadtest.benchmark.plan import Plan
from loadtest.benchmark.workloads import Workloads
from loadtest.checks import check_batch, check_classify, check_completion, check_extract
from loadtest.server import ServerProcess

__all__ = [
    "Bench",
    "measure_hf",
    "measure_overhead",
    "measure_scale",
    "project",
    "reserve_overhead",
    "warm_up",
]

ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "seqgpt"
ENDPOINTS = {
    "classify": ("/v1/classify", check_classify),
    "raw": ("/v1/completions", check_completion),
    "extract": ("/v1/extract", check_extract),
    "classify_batch": ("/v1/classify/batch", partial(check_batch, check_item=check_classify)),
    "extract_batch": ("/v1/extract/batch", partial(check_batch, check_item=check_extract)),
}


class Bench:
    """State of one benchmark run: plan, request factory, clock, corpus position, logs."""

    def __init__(self, plan: Plan, work: Workloads, logs: Path) -> None:
        self.plan, self.work, self.logs = plan, work, logs
        self.started = time.monotonic()
        self._position = 0
        self._positions: dict[str, int] = {}
        # Each server's device, dtype and CPU as its /v1/status gave them, by server name.
        self.servers: dict[str, dict[str, str]] = {}

    def log(self, message: str) -> None:
        """Print a progress line with the elapsed time."""
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        print(f"[{minutes:2d}:{seconds:02d}] {message}", flush=True)

    def take(self, n: int) -> list[Any]:
        """The next ``n`` corpus entries (cycling through the shuffled corpus)."""
        entries = self.work.entries(n, self._position)
        self._position += n
        return entries

    def take_language(self, n: int, language: str) -> list[Any]:
        """The next ``n`` corpus entries in ``language`` (cycling through them)."""
        start = self._positions.get(language, 0)
        self._positions[language] = start + n
        return self.work.entries(n, start, language)

    def cell(self, url: str, kind: str, bodies: list[Any], concurrency: int, label: str) -> dict:
        """Run one measurement and log its headline numbers."""
        path, check = ENDPOINTS[kind]
        result = run_cell(url, path, bodies, concurrency, check)
        self.log(
            f"{label:<28} c={concurrency:<3} n={len(bodies):<3} {result['rps']:6.2f} req/s  "
            f"p50 {result['p50']:6.2f} s  p95 {result['p95']:6.2f} s"
        )
        return result

    @contextlib.contextmanager
    def server(
        self,
        model: Path,
        name: str,
        *extra: str,
        env: dict[str, str] | None = None,
        enforce_eager: bool | None = None,
    ) -> Iterator[ServerProcess]:
        """A server for this run, compiled unless the plan (or ``enforce_eager``) says eager,
        stopped after the block; the span budget makes extraction outputs a realistic size. What
        it serves in (device, dtype, CPU) is recorded from its /v1/status under ``name``."""
        settings = {"SEQGPT_SPAN_TOKENS_PER_LABEL": str(self.plan.span_tokens_per_label)}
        log = self.logs / f"server-{name}.log"
        with ServerProcess(
            model,
            extra_args=extra,
            env={**settings, **(env or {})},
            log_path=log,
            enforce_eager=self.plan.enforce_eager if enforce_eager is None else enforce_eager,
        ) as server:
            status = httpx.get(f"{server.url}/v1/status", timeout=30).json()
            self.servers[name] = {key: status[key] for key in ("device", "dtype", "cpu")}
            self.log(f"server {name}: {status['dtype']} on {status['device']} ({status['cpu']})")
            yield server


def reserve_overhead(bench: Bench) -> dict[tuple[int, int], list[Any]]:
    """Item 1's texts for every (repeat, concurrency), drawn before the Hugging Face runs
    so those can use the same texts as our server at the highest concurrency."""
    plan = bench.plan
    return {
        (repeat, c): bench.take(plan.requests_at(c))
        for repeat in range(plan.repeats)
        for c in plan.overhead_levels
    }


def _spread(work: Workloads, items: list[Any], k: int) -> list[Any]:
    """``k`` items at the middles of ``k`` equal strata of ``items`` sorted by prompt length:
    a small sample that spans short and long texts like the whole set."""
    ordered = sorted(items, key=work.classify_tokens)
    k = min(k, len(ordered))
    return [ordered[(2 * i + 1) * len(ordered) // (2 * k)] for i in range(k)]


def measure_hf(bench: Bench, model: Path, samples: list[list[Any]], dtype: str) -> dict[str, Any]:
    """Both Hugging Face baselines in ``dtype``, in a child process, before any server starts;
    each run on a stratified sample of the texts of one of our runs at the highest
    concurrency."""
    plan = bench.plan
    sizes = {"official": plan.hf_official_n, "batched": plan.hf_batched_n}
    runs = {
        mode: [bench.work.hf(_spread(bench.work, sample, n)) for sample in samples]
        for mode, n in sizes.items()
    }
    requests, out = bench.logs / "hf-requests.json", bench.logs / "hf-results.json"
    requests.write_text(json.dumps(runs, ensure_ascii=False), encoding="utf-8")
    bench.log("Hugging Face transformers baselines (no server running) ...")
    command = [sys.executable, "-m", "loadtest.benchmark.hf_baseline", "--model", str(model)]
    command += ["--requests", str(requests), "--out", str(out), "--modes", "official", "batched"]
    command += ["--batch-size", str(plan.hf_batch_size), "--dtype", dtype]
    subprocess.run(command, cwd=ROOT, check=True)
    timings = json.loads(out.read_text(encoding="utf-8"))
    return {mode: median_of([_hf_summary(run) for run in timings[mode]]) for mode in timings}


def _hf_summary(run: dict[str, Any]) -> dict[str, float]:
    latencies = run["latencies"]
    return {
        "rps": len(latencies) / run["elapsed"],
        "p50": float(np.percentile(latencies, 50)),
        "p95": float(np.percentile(latencies, 95)),
        "prompt_tokens": float(np.mean(run["prompt_tokens"])),
        "completion_tokens": float(np.mean(run["tokens"])),
        "errors": 0.0,
        "n": float(len(latencies)),
    }


def warm_up(
    bench: Bench, url: str, *, extract_only: bool = False, classify_only: bool = False
) -> tuple[float, float]:
    """Warm every path; return one classification's latency and the rate at concurrency 8."""
    work = bench.work
    if classify_only:
        bench.cell(url, "classify", work.classify(bench.take(2)), 2, "warm-up classify")
        return 0.0, 0.0
    bench.cell(url, "extract", work.extract(bench.take(2)), 2, "warm-up extract")
    if extract_only:
        return 0.0, 0.0
    bench.cell(url, "raw", work.raw_classify(bench.take(2), MODEL_NAME), 2, "warm-up raw")
    alone = bench.cell(url, "classify", work.classify(bench.take(2)), 1, "warm-up classify")
    busy = bench.cell(url, "classify", work.classify(bench.take(8)), 8, "warm-up classify")
    return alone["p50"], busy["rps"]


def project(plan: Plan, alone: float, busy_rps: float) -> float:
    """A rough estimate of the seconds the server measurements will take."""

    def classify(c: int, n: int) -> float:
        return n * (alone / c if c < 8 else 1 / busy_rps)

    total = sum(2 * classify(c, plan.requests_at(c)) for c in plan.overhead_levels)
    total += sum(
        classify(c, plan.requests_at(c))
        for c in plan.classify_levels
        if c not in plan.overhead_levels
    )
    total += sum(2.5 * classify(c, plan.requests_at(c)) for c in plan.extract_levels)
    total += plan.extract_latency_n * alone * (2 + 4)
    passes = 2 if plan.prefix_off_server else 1
    throughput = 4 * classify(plan.extract_throughput_concurrency, plan.extract_throughput_n)
    total += passes * throughput
    total += 2 * (1 + 2.5) * plan.batch_size / busy_rps  # 5a
    total += 2 * 1.5 * plan.requests_at(plan.scores_concurrency) / busy_rps  # 5b
    total += plan.reference_n * alone * (2 + 5 + 2.5 + 12)  # 5c, classify and extract
    total += 2 * alone * plan.document_tokens / 100  # 5d: a prompt of ~100 tokens takes `alone`
    # 6: the launcher's dtype; the other one, where bf16 is not native, many times slower (not
    # known before it runs: counted as 4x).
    dtype = sum(classify(c, plan.dtype_requests_at(c)) for c in plan.dtype_levels)
    total += dtype * (5 if plan.dtype_servers else 1)
    servers = (60 if plan.prefix_off_server else 0) + (60 if plan.reference_server else 0)
    servers += 2 * 40 if plan.dtype_servers else 0
    # 7, run once: each config's prompts about twice the corpus's, and an eager server each but
    # the main server's (about a minute to start on 2 cores).
    prefill = len(plan.prefill_configs) * 2 * plan.prefill_requests / busy_rps
    servers += 60 * (len(plan.prefill_configs) - 1)
    return plan.repeats * total + prefill + servers


def measure_overhead(
    bench: Bench, url: str, reserved: dict[tuple[int, int], list[Any]]
) -> dict[str, dict[str, Any]]:
    """Item 1: /v1/classify against the same prompts by hand on /v1/completions."""
    runs: dict[str, dict[int, list[dict]]] = {"classify": {}, "raw": {}}
    for repeat in range(bench.plan.repeats):
        for c in bench.plan.overhead_levels:
            entries = reserved[(repeat, c)]
            # Alternate which side goes first, so drift in the machine's load hits both alike.
            sides = ["classify", "raw"] if repeat % 2 == 0 else ["raw", "classify"]
            for side in sides:
                bodies = (
                    bench.work.classify(entries)
                    if side == "classify"
                    else bench.work.raw_classify(entries, MODEL_NAME)
                )
                result = bench.cell(url, side, bodies, c, f"1. overhead {side} #{repeat + 1}")
                runs[side].setdefault(c, []).append(result)
    medians = {side: {str(c): median_of(r) for c, r in by_c.items()} for side, by_c in runs.items()}
    for c, ours in runs["classify"].items():
        # Each run pairs with the by-hand run on the same texts right beside it in time, so
        # the median of the pairs' ratios cancels most drift in a shared machine's load.
        pairs = zip(ours, runs["raw"][c], strict=True)
        medians["classify"][str(c)]["paired_ratio"] = median(a["rps"] / b["rps"] for a, b in pairs)
    return medians


def measure_scale(bench: Bench, url: str, overhead: dict[str, Any]) -> dict[str, Any]:
    """Item 4: throughput and p95 as concurrency grows, for classify and extract."""
    plan, work = bench.plan, bench.work
    scale: dict[str, dict[str, Any]] = {"classify": {}, "extract": {}}
    for kind, levels in (("classify", plan.classify_levels), ("extract", plan.extract_levels)):
        for c in levels:
            if kind == "classify" and str(c) in overhead["classify"]:
                scale[kind][str(c)] = overhead["classify"][str(c)]  # measured in item 1
                continue
            runs = []
            for repeat in range(plan.repeats):
                entries = bench.take(plan.requests_at(c))
                bodies = work.classify(entries) if kind == "classify" else work.extract(entries)
                runs.append(bench.cell(url, kind, bodies, c, f"4. scale {kind} #{repeat + 1}"))
            scale[kind][str(c)] = median_of(runs)
    return scale
