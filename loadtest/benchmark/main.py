"""The side-by-side benchmark; writes ``BENCHMARKS.md`` and its plots.

    python -m loadtest.benchmark                   # 560M-shaped model, about 20 minutes
    python -m loadtest.benchmark --size tiny --quick --report /tmp/b/BENCHMARKS.md --plots /tmp/b

One machine, one run, one server at a time: (1) our ``/v1/classify`` against the same prompts
sent by hand to ``/v1/completions``; (2) Hugging Face ``transformers`` as SeqGPT's code runs it;
(3) a 13-label extraction against a 6-label one, and prefix caching on and off; (4) throughput
and p95 as concurrency grows; (5) the request options: batches against single calls, scores,
reference decoding, and a long document windowed by the server against the same windows sent by
the client; (6) plain classification in bf16 against fp32, each on an eager server of its own;
(7) prefill against the matrix-multiply roof measured in the same run, over a sweep of the
launcher's CPU choices, a server each.
Every other server serves the dtype the launcher picks for this CPU, the Hugging Face baselines
compute in it too, and the report records each one's. Random weights never stop generating, so
every side is capped at the token budget our service computes for the request.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from loadtest.benchmark.measure import (
    Bench,
    measure_hf,
    measure_overhead,
    measure_scale,
    project,
    reserve_overhead,
    warm_up,
)
from loadtest.benchmark.measure_dtype import measure_dtypes
from loadtest.benchmark.measure_extract import measure_extract_latency, measure_extract_throughput
from loadtest.benchmark.measure_options import measure_batches, measure_reference, measure_scores
from loadtest.benchmark.measure_prefill import PrefillSweep
from loadtest.benchmark.measure_windows import measure_windows
from loadtest.benchmark.plan import FULL, QUICK
from loadtest.benchmark.report import write_report
from loadtest.benchmark.workloads import Workloads
from loadtest.machine import machine_facts
from loadtest.server import ensure_model
from serving.core.cpu import choose_dtype, cpu_facts

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.benchmark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--size", choices=["tiny", "560m"], default="560m")
    parser.add_argument("--model", type=Path, help="Checkpoint folder (default .models/SIZE).")
    parser.add_argument("--quick", action="store_true", help="Tiny request counts (tests).")
    parser.add_argument("--repeats", type=int, help="Override the plan's repeats.")
    parser.add_argument("--report", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--plots", type=Path, default=ROOT / "loadtest" / "benchmark" / "plots")
    parser.add_argument("--logs", type=Path, help="Server logs (default loadtest/reports/...).")
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="Write BENCHMARKS.md from a tree with uncommitted changes (its figures then name "
        "no commit anyone can check out).",
    )
    return parser.parse_args(argv)


def _measure_servers(
    bench: Bench, model: Path, reserved: dict[tuple[int, int], list[Any]], sweep: PrefillSweep
) -> dict[str, Any]:
    """Items 1, 3, 4 and 5 on a server with prefix caching, then 3b and 5d on one without,
    5c's classification on one with a real answer's budget, 6 on one per dtype and 7 on one per
    config of its sweep."""
    plan = bench.plan
    with bench.server(model, "prefix-on") as server:
        alone, busy = warm_up(bench, server.url)
        bench.log(f"projected: about {project(plan, alone, busy) / 60:.0f} more minutes")
        overhead = measure_overhead(bench, server.url, reserved)
        scale = measure_scale(bench, server.url, overhead)
        latency = measure_extract_latency(bench, server.url)
        batches = [bench.take(plan.extract_throughput_n) for _ in range(plan.repeats)]
        on = measure_extract_throughput(bench, server.url, batches, "prefix on")
        options = {
            "batch": measure_batches(bench, server.url),
            "scores": measure_scores(bench, server.url),
            "reference": {"extract": measure_reference(bench, server.url, "extract")},
        }
        if not plan.reference_server:
            options["reference"]["classify"] = measure_reference(bench, server.url, "classify")
        if not plan.prefix_off_server:
            options["windows"] = measure_windows(bench, server.url, cache=True)
        if not plan.dtype_servers:
            dtypes = measure_dtypes(bench, model, on=server.url)
        sweep.on_main(server.url, "prefix-on")
    off = None
    if plan.prefix_off_server:
        with bench.server(model, "prefix-off", "--no-enable-prefix-caching") as server:
            warm_up(bench, server.url, extract_only=True)
            off = measure_extract_throughput(bench, server.url, batches, "prefix off")
            options["windows"] = measure_windows(bench, server.url, cache=False)
    if plan.reference_server:
        budget = {"SEQGPT_MAX_NEW_TOKENS": str(plan.reference_max_new_tokens)}
        with bench.server(model, "reference", env=budget) as server:
            warm_up(bench, server.url, classify_only=True)
            options["reference"]["classify"] = measure_reference(bench, server.url, "classify")
    if plan.dtype_servers:
        dtypes = measure_dtypes(bench, model)
    sweep.on_own_servers()
    return {
        "overhead": overhead,
        "scale": scale,
        "extract_latency": latency,
        "extract_throughput": {"on": on, "off": off},
        "options": options,
        "dtypes": dtypes,
        "prefill": sweep.result(),
    }


def _tokenizer_facts(work: Workloads) -> dict[str, Any]:
    """The model's tokenizer against the one test checkpoints had before (the tiny model's):
    vocabulary and tokens per character of the corpus."""
    from transformers import PreTrainedTokenizerFast

    from serving.testmodels.random_model import SIZES, train_tokenizer

    tiny = SIZES["tiny"]
    trained = train_tokenizer(tiny.tokenizer_vocab, tiny.tokenizer)
    before = PreTrainedTokenizerFast(tokenizer_object=trained)
    return {
        "vocabulary": work.vocabulary,
        "tokens_per_char": work.tokens_per_char(),
        "before": {"vocabulary": len(before), "tokens_per_char": work.tokens_per_char(before)},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report; the exit code is 0 when it completed."""
    args = _parse(argv)
    official = args.report.resolve() == (ROOT / "BENCHMARKS.md").resolve()
    if official and not args.allow_dirty and "uncommitted" in machine_facts()["commit"]:
        print("error: BENCHMARKS.md is generated from a clean commit: commit first.")
        return 2
    plan = QUICK if args.quick else FULL
    if args.repeats:
        plan = dataclasses.replace(plan, repeats=args.repeats)
    model = ensure_model(args.model or ROOT / ".models" / args.size, args.size)
    logs = args.logs or ROOT / "loadtest" / "reports" / time.strftime("benchmark-%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    command = "python -m loadtest.benchmark " + shlex.join(sys.argv[1:] if argv is None else argv)
    results: dict[str, Any] = {
        "meta": {"command": command.strip(), "size": args.size, "before": machine_facts()},
        "plan": dataclasses.asdict(plan),
    }
    bench = Bench(plan, Workloads(model, plan.span_tokens_per_label), logs)
    results["meta"]["tokenizer"] = _tokenizer_facts(bench.work)
    # What the launcher picks here, from this process's view of the same CPU; the servers' own
    # dtypes are read from their /v1/status (meta.servers).
    choice = choose_dtype(cpu_facts())
    results["meta"]["cpu"] = str(cpu_facts())
    results["meta"]["dtype_choice"] = {"dtype": choice.dtype, "reason": choice.reason}
    results["meta"]["hf_dtype"] = choice.dtype
    reserved = reserve_overhead(bench)
    top = max(plan.overhead_levels)
    samples = [reserved[(repeat, top)] for repeat in range(plan.repeats)]
    sweep = PrefillSweep(bench, model)  # the roof, before any server starts
    results["hf"] = measure_hf(bench, model, samples, choice.dtype)
    results.update(_measure_servers(bench, model, reserved, sweep))
    results["meta"]["servers"] = bench.servers
    results["meta"]["after"] = machine_facts()
    results["meta"]["elapsed_s"] = time.monotonic() - bench.started
    (logs / "benchmark.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    write_report(results, args.report, args.plots)
    bench.log(f"wrote {args.report} and plots in {args.plots}; logs in {logs}")
    return 0
