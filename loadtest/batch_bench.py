"""Batch throughput: vLLM in the batch's own process (``--model``) against the same rows sent to
a server (``--url``), side by side in one run; writes ``BATCH_BENCHMARK.md``.

    python -m loadtest.batch_bench                                   # tiny, then the 560m shape
    python -m loadtest.batch_bench --sizes tiny --rows 64 --repeats 1 --report /tmp/b.md

Both sides run the batch commands' own code (``serving.batch.process``: the same reader,
checks, writer and rows in flight), one side at a time on the same machine: first the engine
in this process, then a server (``seqgpt-serve serve``) and the HTTP runner. Each run is a fresh
file of corpus texts (``loadtest/corpus.jsonl``) with each row's own labels; a unique tag in
front of each text keeps vLLM's prefix cache from reusing an earlier run. Both sides get the
same files, in the same order. Random weights never stop by themselves, so extraction budgets
are sized per label (``SEQGPT_SPAN_TOKENS_PER_LABEL``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from loadtest.corpus import load_corpus
from loadtest.report import machine_facts
from loadtest.server import ServerProcess, ensure_model

__all__ = ["main", "render"]

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("classify", "extract")
ROWS = {"tiny": 512, "560m": 128}
SPAN_TOKENS_PER_LABEL = 8
WARM_UP_ROWS = 16


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=["tiny", "560m"], default=["tiny", "560m"])
    parser.add_argument("--rows", type=int, help="Rows per run (default: tiny 512, 560m 128).")
    parser.add_argument("--repeats", type=int, default=3, help="Runs per side and task.")
    parser.add_argument(
        "--url-concurrency",
        type=int,
        nargs="+",
        help="--concurrency values of the --url side (default: 64, its default, and the "
        "in-process side's rows in flight).",
    )
    parser.add_argument("--report", type=Path, default=ROOT / "BATCH_BENCHMARK.md")
    parser.add_argument("--work", type=Path, help="Row files, outputs, server logs.")
    parser.add_argument("--allow-dirty", action="store_true", help="Report from a dirty tree.")
    return parser.parse_args(argv)


def _log(started: float, message: str) -> None:
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    print(f"[{minutes:2d}:{seconds:02d}] {message}", flush=True)


def make_rows(directory: Path, task: str, run: str, count: int) -> Path:
    """A JSONL file of ``count`` corpus rows with their own labels, tagged by ``run``."""
    corpus = load_corpus()
    path = directory / f"{task}-{run}.jsonl"
    with path.open("w", encoding="utf-8") as rows:
        for i in range(count):
            entry = corpus[i % len(corpus)]
            labels = entry.classify_labels if task == "classify" else entry.extract_labels
            row = {"id": f"{run}-{i}", "text": f"#{run}-{i:05d} {entry.text}", "labels": labels}
            rows.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


async def _measure(task: str, rows: Path, runner: Any, concurrency: int | None) -> dict[str, Any]:
    """One batch run of ``rows`` with ``runner``: rows, errors, seconds, rows/s."""
    from serving.batch import BatchJob, Summary, process
    from serving.batch_io import count_rows, open_output, read_rows

    output = rows.with_name(f"{rows.stem}.{time.monotonic_ns()}.out.jsonl")
    job = BatchJob(task, rows, output, None, concurrency)
    writer, done = open_output(output)
    summary = Summary(*count_rows(rows, done))
    started = time.monotonic()
    try:
        await process(job, read_rows(rows), done, writer, runner, summary)
    finally:
        writer.close()
    seconds = time.monotonic() - started
    return {
        "rows": summary.written,
        "errors": summary.errors,
        "seconds": round(seconds, 3),
        "rows_per_s": round(summary.written / seconds, 3),
    }


async def _side(
    runner: Any, files: dict[str, list[Path]], warm: dict[str, Path], c: int | None, log: Any
) -> dict[str, list[dict[str, Any]]]:
    """Warm up, then every run of every task, in file order."""
    results: dict[str, list[dict[str, Any]]] = {}
    for task in TASKS:
        await _measure(task, warm[task], runner, c)
        results[task] = []
        for rows in files[task]:
            results[task].append(await _measure(task, rows, runner, c))
            log(f"  {task} {rows.name}: {results[task][-1]['rows_per_s']:.2f} rows/s")
    return results


def _in_process(model: Path, files: Any, warm: Any, log: Any) -> tuple[dict[str, Any], int]:
    from serving.batch_engine import EngineOptions, engine_runner
    from serving.settings import Settings

    async def run() -> tuple[dict[str, Any], int]:
        options = EngineOptions(str(model), enforce_eager=True)
        async with engine_runner(options, Settings()) as runner:
            log(f"in-process engine up; rows in flight: {runner.default_concurrency}")
            return await _side(runner, files, warm, None, log), runner.default_concurrency

    return asyncio.run(run())


def _over_http(
    model: Path, files: Any, warm: Any, levels: list[int], logs: Path, log: Any
) -> dict[str, Any]:
    from serving.batch_http import http_runner

    env = {"SEQGPT_SPAN_TOKENS_PER_LABEL": str(SPAN_TOKENS_PER_LABEL)}
    results: dict[str, Any] = {}
    with ServerProcess(model, env=env, log_path=logs / f"server-{model.name}.log") as server:
        log(f"server up at {server.url}")
        for level in levels:

            async def run(c: int = level) -> dict[str, Any]:
                async with http_runner(server.url, None, c) as runner:
                    return await _side(runner, files, warm, c, log)

            results[str(level)] = asyncio.run(run())
    return results


def _measure_size(size: str, args: argparse.Namespace, work: Path, log: Any) -> dict[str, Any]:
    model = ensure_model(ROOT / ".models" / size, size)
    rows = args.rows or ROWS[size]
    directory = work / size
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        t: [make_rows(directory, t, f"r{n}", rows) for n in range(args.repeats)] for t in TASKS
    }
    warm = {task: make_rows(directory, task, "warm", WARM_UP_ROWS) for task in TASKS}
    log(f"{size}: {rows} rows x {args.repeats} runs per task and side")
    in_process, batch = _in_process(model, files, warm, log)
    levels = args.url_concurrency or list(dict.fromkeys([64, batch]))
    over_http = _over_http(model, files, warm, levels, work, log)
    return {
        "rows": rows,
        "repeats": args.repeats,
        "model_concurrency": batch,
        "model": in_process,
        "url": over_http,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure each size, write the report; 0 when every run answered every row."""
    args = _parse(argv)
    official = args.report.resolve() == (ROOT / "BATCH_BENCHMARK.md").resolve()
    if official and not args.allow_dirty and "uncommitted" in machine_facts()["commit"]:
        print("error: BATCH_BENCHMARK.md is generated from a clean commit: commit first.")
        return 2
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ["SEQGPT_SPAN_TOKENS_PER_LABEL"] = str(SPAN_TOKENS_PER_LABEL)
    started = time.monotonic()
    work = args.work or ROOT / "loadtest" / "reports" / time.strftime("batch-%Y%m%d-%H%M%S")
    command = "python -m loadtest.batch_bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    results: dict[str, Any] = {"command": command.strip(), "before": machine_facts(), "sizes": {}}
    for size in args.sizes:
        results["sizes"][size] = _measure_size(size, args, work, lambda m: _log(started, m))
    results["after"] = machine_facts()
    results["minutes"] = round((time.monotonic() - started) / 60, 1)
    (work / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    args.report.write_text(render(results), encoding="utf-8")
    _log(started, f"wrote {args.report}; rows and results in {work}")
    return 0 if _all_answered(results) else 1


def _all_answered(results: dict[str, Any]) -> bool:
    runs = [
        run
        for size in results["sizes"].values()
        for side in [size["model"], *size["url"].values()]
        for task_runs in side.values()
        for run in task_runs
    ]
    return all(run["errors"] == 0 and run["rows"] > 0 for run in runs)


def _median(runs: list[dict[str, Any]]) -> float:
    return float(statistics.median(run["rows_per_s"] for run in runs))


def render(results: dict[str, Any]) -> str:
    """The Markdown report of ``results``."""
    facts = results["before"]
    lines = [
        "# Batch benchmark: in-process engine against a server",
        "",
        "Generated by `python -m loadtest.batch_bench`; re-running it re-measures and rewrites "
        "this file. Rows per second of `seqgpt-serve classify|extract` with vLLM in the batch's "
        "own process (`--model`) and with the same rows sent to a `seqgpt-serve serve` server "
        "on the same machine (`--url`). Figures are **medians** of the runs.",
        "",
        "## Results",
        "",
    ]
    for size, sized in results["sizes"].items():
        levels = list(sized["url"])
        head = " | ".join(f"`--url` c={level} rows/s" for level in levels)
        ratio = " | ".join(f"÷ c={level}" for level in levels)
        lines += [
            f"### {size} model ({sized['rows']} rows × {sized['repeats']} runs per task and side)",
            "",
            f"| task | `--model` rows/s (c={sized['model_concurrency']}) | {head} | "
            f"`--model` {ratio} |",
            "| --- | --- |" + " --- |" * (2 * len(levels)),
        ]
        for task in TASKS:
            ours = _median(sized["model"][task])
            others = [_median(sized["url"][level][task]) for level in levels]
            cells = " | ".join(f"{value:.2f}" for value in others)
            ratios = " | ".join(f"{ours / value:.2f}×" for value in others)
            lines.append(f"| {task} | {ours:.2f} | {cells} | {ratios} |")
        lines.append("")
    lines += _how(results, facts)
    return "\n".join(lines) + "\n"


def _how(results: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in facts["versions"].items())
    runs = {
        size: " / ".join(
            f"{task} " + ", ".join(f"{run['rows_per_s']:.2f}" for run in sized["model"][task])
            for task in TASKS
        )
        for size, sized in results["sizes"].items()
    }
    return [
        "## Machine, versions, command",
        "",
        "| | |",
        "| --- | --- |",
        f"| machine | {facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB, "
        f"{facts['os']}, no GPU |",
        f"| load average (1/5/15 min) | before {facts['load_average']}, after "
        f"{results['after']['load_average']} (a shared machine: other jobs' load is in the "
        "figures) |",
        f"| versions | Python {facts['python']}, {versions} |",
        f"| commit | {facts['commit']} |",
        "| models | random-weight checkpoints of `seqgpt-serve make-test-model --size SIZE` "
        "(`560m`: SeqGPT-560M's exact shape), bf16 |",
        "| settings | both sides: `--enforce-eager`, `--max-model-len 2048`, greedy, "
        f"SEQGPT_SPAN_TOKENS_PER_LABEL={SPAN_TOKENS_PER_LABEL}, the launcher's CPU environment "
        "(VLLM_CPU_KVCACHE_SPACE=4, VLLM_CPU_NUM_OF_RESERVED_CPU=0 on ≤ 4 cores) |",
        f"| command | `{results['command']}`, run at {facts['time']}, took "
        f"{results['minutes']} min |",
        "",
        "## How it is measured",
        "",
        "- One side at a time on the same machine: the engine in the benchmark's own process "
        "first, then a server (`seqgpt-serve serve`, its own processes) with the HTTP runner. "
        "Both run the batch commands' code (`serving.batch.process`): the same reader, row "
        "checks, JSONL writer and rows in flight; only the runner differs.",
        "- `--model` keeps the engine's batch full (`max_num_seqs` rows in flight, its default); "
        "`--url` sends `c` rows at a time (64 is its default; the other level is `--model`'s).",
        "- rows/s = rows answered ÷ wall time of the run, from the first row read to the last "
        "line written (engine and server start-up excluded). Each side first answers "
        f"{WARM_UP_ROWS} warm-up rows per task.",
        "- Rows are corpus texts (`loadtest/corpus.jsonl`, Chinese and English) with their own "
        "label sets (5 each: one classification prompt, one extraction prompt). A unique tag in "
        "front of every text keeps vLLM's prefix cache from reusing an earlier run; both sides "
        "get the same files. "
        + (
            "Every run answered every row (no error rows)."
            if _all_answered(results)
            else "**Some runs had error rows or no rows: see results.json.**"
        ),
        f"- Single runs of `--model` (rows/s): {'; '.join(f'{s}: {r}' for s, r in runs.items())}.",
    ]


if __name__ == "__main__":
    sys.exit(main())
