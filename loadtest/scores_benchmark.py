"""Per-label scores: their cost (BENCHMARKS.md 5b) and what they cost everyone else, per cap.

For each cap on the score reads in the engine at once (``IDLE/BUSY``: ``SEQGPT_MAX_SCORE_READS``
and ``SEQGPT_MAX_SCORE_READS_BUSY``, beside a task prompt; ``N``: both N; ``default``: both unset,
the server's choice for its device), a server of its own (compiled, as ``make serve`` runs it) is
measured twice:

- **throughput**: ``/v1/classify`` req/s with ``"scores": true`` ÷ without, at c=16 on the
  benchmark's texts (item 5b's own measurement, ``measure_options.measure_scores``);
- **starvation**: a plain classification's median latency, one at a time, while 8 clients send
  scored classifications (6 labels) back to back, ÷ its median latency on the idle server.

    python -m loadtest.scores_benchmark                      # default cap, and none: 560M shape
    python -m loadtest.scores_benchmark --size tiny --caps default 16/4 1024

The figures go to ``loadtest/results/scores.json``, which BENCHMARKS.md renders (§10).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from loadtest.benchmark.measure import Bench
from loadtest.benchmark.measure_options import measure_scores
from loadtest.benchmark.plan import FULL, QUICK
from loadtest.benchmark.workloads import Workloads
from loadtest.machine import machine_facts, provenance
from loadtest.server import ensure_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "loadtest" / "results" / "scores.json"
LABELS = ["体育", "财经", "娱乐", "科技", "政治", "教育"]
TEXT = "北京时间昨晚，中国女排以3比1战胜巴西队，晋级世界杯决赛。主教练赛后表示，球队顶住了压力。"
SCORERS = 8  # clients sending scored classifications while the plain latency is measured
LATENCY_SAMPLES = 7
NO_CAP = "1024"  # more reads than the engine holds: in effect no cap


def _latency(http: httpx.Client, **options: Any) -> float:
    started = time.perf_counter()
    http.post("/v1/classify", json={"text": TEXT, "labels": LABELS, **options}).raise_for_status()
    return time.perf_counter() - started


def measure_starvation(url: str) -> dict[str, float]:
    """A plain classification's median latency idle and under ``SCORERS`` scores clients."""
    stop = threading.Event()
    scored: list[float] = []

    def score() -> None:
        with httpx.Client(base_url=url, timeout=600) as client:
            while not stop.is_set():
                scored.append(_latency(client, scores=True))

    with httpx.Client(base_url=url, timeout=600) as http:
        _latency(http)  # warm
        idle = statistics.median(_latency(http) for _ in range(LATENCY_SAMPLES))
        scorers = [threading.Thread(target=score) for _ in range(SCORERS)]
        for thread in scorers:
            thread.start()
        try:
            while len(scored) < SCORERS:  # every scorer has been answered once: at full load
                time.sleep(0.05)
            busy = statistics.median(_latency(http) for _ in range(LATENCY_SAMPLES))
        finally:
            stop.set()
            for thread in scorers:
                thread.join()
    return {
        "idle_ms": idle * 1000,
        "busy_ms": busy * 1000,
        "ratio": busy / idle,
        "scored_p50_ms": statistics.median(scored) * 1000,
    }


def main(argv: list[str] | None = None) -> None:
    """Measure every cap on a server of its own and write the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=["tiny", "560m"], default="560m")
    parser.add_argument("--model", type=Path, help="Checkpoint folder (default .models/SIZE).")
    parser.add_argument("--caps", nargs="+", default=["default", NO_CAP])
    parser.add_argument("--repeats", type=int, default=2, help="throughput runs per side")
    parser.add_argument("--quick", action="store_true", help="The quick plan: eager, c=2 (tests).")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--logs", type=Path, help="Server logs (default loadtest/reports/...).")
    args = parser.parse_args(argv)
    before = machine_facts()
    plan = dataclasses.replace(QUICK if args.quick else FULL, repeats=args.repeats)
    model = ensure_model(args.model or ROOT / ".models" / args.size, args.size)
    logs = args.logs or ROOT / "loadtest" / "reports" / time.strftime("scores-%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    bench = Bench(plan, Workloads(model, plan.span_tokens_per_label), logs)
    caps: dict[str, Any] = {}
    for cap in args.caps:
        idle, _, busy = cap.partition("/")
        env = {} if cap == "default" else {"SEQGPT_MAX_SCORE_READS": idle}
        if busy:
            env["SEQGPT_MAX_SCORE_READS_BUSY"] = busy
        with bench.server(model, "reads-" + cap.replace("/", "-"), env=env) as server:
            caps[cap] = {
                "throughput": measure_scores(bench, server.url),
                "starvation": measure_starvation(server.url),
            }
        bench.log(f"reads {cap}: {json.dumps(caps[cap])}")
    command = f"python -m loadtest.scores_benchmark --size {args.size} --caps " + " ".join(
        args.caps
    )
    figures = {
        **provenance(command, before),
        "model": f"{args.size} in {next(iter(bench.servers.values()))['dtype']}",
        "repeats": args.repeats,
        "scorers": SCORERS,
        "caps": caps,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    bench.log(f"wrote {args.results}")


if __name__ == "__main__":
    main()
