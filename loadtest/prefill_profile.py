"""Where the model runner's time goes during item 7's prefill (BENCHMARKS.md §7): the reason
the server's GFLOP/s stays under the matmul roof.

A compiled server (as ``make serve`` runs it) is sent item 7's cell (32 plain classifications of
long-ish texts at c=32), once to warm up and then ``--repeats`` times while py-spy samples
(Python frames only, ``--rate`` 20 a second: too light to slow the run measurably) the process
that runs the model (vLLM's ``VLLM::Worker``). Each sample of that process's main thread falls
in one part of an engine step: the layers' forward, the output layer, sampling, waiting for the
scheduler's next step (in the engine-core process, which shares the cores with the API server),
or the rest of the runner. The layers' GFLOP/s *while they run* is the cell's GFLOP/s ÷ the
share of time in the forward: against the roof (measured first, no server running) it says
whether the kernels or the time between them keep prefill from the roof.

    python -m loadtest.prefill_profile                      # 560M shape
    python -m loadtest.prefill_profile --size tiny --rate 200 --results /tmp/p.json

The figures go to ``loadtest/results/prefill_profile.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
from pathlib import Path
from typing import Any

import psutil

from loadtest.benchmark.flops import Shape, prefill_gflop
from loadtest.benchmark.measure import Bench, warm_up
from loadtest.benchmark.measure_prefill import long_entries
from loadtest.benchmark.plan import FULL
from loadtest.benchmark.roof import engine_threads, matmul_roof
from loadtest.benchmark.workloads import Workloads
from loadtest.machine import machine_facts, provenance
from loadtest.server import ensure_model
from loadtest.spy import py_spy
from serving.core.cpu import choose_dtype, cpu_facts

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "loadtest" / "results" / "prefill_profile.json"
# Parts of an engine step, by a frame on the main thread's stack (first match wins).
PARTS = [
    ("output layer", "compute_logits ("),
    ("layers' forward", "BloomForCausalLM.forward ("),
    ("sampling", "sample_tokens ("),
    ("waiting for the next step", "MessageQueue.acquire_read ("),
]
MAIN_THREAD = "worker_busy_loop ("


def _runner_pid(launcher: int) -> int:
    """The process that runs the model: vLLM's worker, else its engine core."""
    children = psutil.Process(launcher).children(recursive=True)
    for name in ("VLLM::Worker", "VLLM::EngineCore"):
        for child in children:
            if child.name() == name:
                return int(child.pid)
    raise RuntimeError(f"no vLLM worker under process {launcher}")


def parts(raw: str) -> dict[str, float]:
    """Shares of the main thread's samples (py-spy's raw format) by part of an engine step."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if MAIN_THREAD not in stack:
            continue  # another thread (vLLM's monitors), idle
        part = next((name for name, frame in PARTS if frame in stack), "the rest of the runner")
        counts[part] += int(count)
    total = sum(counts.values()) or 1
    return {name: counts[name] / total for name, _ in [*PARTS, ("the rest of the runner", "")]}


def main(argv: list[str] | None = None) -> int:
    """Measure and write ``--results``; the exit code is 0 when it completed."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.prefill_profile")
    parser.add_argument("--size", choices=["tiny", "560m"], default="560m")
    parser.add_argument("--model", type=Path, help="Checkpoint folder (default .models/SIZE).")
    parser.add_argument("--repeats", type=int, default=3, help="Profiled cells.")
    parser.add_argument("--rate", type=int, default=20, help="py-spy's samples a second.")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--logs", type=Path, default=ROOT / "loadtest" / "reports" / "profile")
    args = parser.parse_args(argv)
    model = ensure_model(args.model or ROOT / ".models" / args.size, args.size)
    args.logs.mkdir(parents=True, exist_ok=True)
    meta = machine_facts()
    shape = Shape.from_config(json.loads((model / "config.json").read_text(encoding="utf-8")))
    dtype = choose_dtype(cpu_facts()).dtype
    roof = matmul_roof(dtype, engine_threads(), FULL.roof_tokens, shape.hidden)
    bench = Bench(FULL, Workloads(model, FULL.span_tokens_per_label), args.logs)
    bench.log(f"roof {roof['gflop_per_s']:.1f} GFLOP/s ({dtype}, {roof['capability']})")

    def cell(url: str, label: str) -> dict[str, Any]:
        entries = long_entries(bench, FULL.prefill_requests, FULL.prefill_text_tokens)
        bodies = bench.work.classify(entries)
        return bench.cell(url, "classify", bodies, FULL.prefill_concurrency, label)

    with bench.server(model, "profile", enforce_eager=False) as server:
        warm_up(bench, server.url, classify_only=True)
        cell(server.url, "7. prefill, warm-up")  # the first long prompts run slower
        out = args.logs / "py-spy.txt"
        with py_spy(_runner_pid(server.pid), out, args.rate, idle=True):
            cells = [cell(server.url, f"7. prefill #{n + 1}") for n in range(args.repeats)]
    shares = parts(out.read_text(encoding="utf-8"))
    gflop = prefill_gflop(shape, statistics.fmean(c["prompt_tokens"] for c in cells))["total"]
    served = statistics.median(c["rps"] for c in cells) * gflop
    forward = served / max(shares["layers' forward"] + shares["output layer"], 1e-9)
    result = {
        **provenance(f"{parser.prog} --repeats {args.repeats} --rate {args.rate}", meta),
        "dtype": dtype,
        "roof_gflop_per_s": roof["gflop_per_s"],
        "served_gflop_per_s": served,
        "in_forward_gflop_per_s": forward,
        "shares": shares,
        "server": bench.servers["profile"],
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    bench.log(
        f"served {served:.0f} GFLOP/s = {served / roof['gflop_per_s']:.0%} of the roof; in the "
        f"forward {forward:.0f} GFLOP/s = {forward / roof['gflop_per_s']:.0%}; "
        + ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
