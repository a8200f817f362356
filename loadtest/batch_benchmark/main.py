"""Batch throughput: vLLM in the batch's own process (``--model``) against the same rows sent to
a server (``--url``), side by side in one run; writes ``BATCH_BENCHMARK.md``.

    python -m loadtest.batch_benchmark                     # tiny, then the 560m shape
    python -m loadtest.batch_benchmark --sizes tiny --rows 64 --repeats 1 --report /tmp/b.md
    python -m loadtest.batch_benchmark --render loadtest/batch_benchmark/results.json

Both sides run the batch commands' own code (``serving.batch.job.process``: the same reader,
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
import sys
import time
from pathlib import Path
from typing import Any

from loadtest.batch_benchmark.report import (
    SPAN_TOKENS_PER_LABEL,
    TASKS,
    WARM_UP_ROWS,
    all_answered,
    render,
)
from loadtest.corpus import load_corpus
from loadtest.machine import machine_facts
from loadtest.server import ServerProcess, ensure_model

__all__ = ["main", "make_rows"]

ROOT = Path(__file__).resolve().parents[2]
ROWS = {"tiny": 512, "560m": 128}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.batch_benchmark", description=__doc__.split("\n")[0]
    )
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
    parser.add_argument(
        "--render", type=Path, metavar="RESULTS_JSON", help="Only re-render a run's report."
    )
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
    from serving.batch.files import count_rows, open_output, read_rows
    from serving.batch.job import BatchJob, Summary, process

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
    from serving.batch.engine import EngineOptions, engine_answerer
    from serving.core.settings import Settings

    async def run() -> tuple[dict[str, Any], int]:
        options = EngineOptions(str(model), enforce_eager=True)
        async with engine_answerer(options, Settings()) as runner:
            log(f"in-process engine up; rows in flight: {runner.default_concurrency}")
            return await _side(runner, files, warm, None, log), runner.default_concurrency

    return asyncio.run(run())


def _over_http(
    model: Path, files: Any, warm: Any, levels: list[int], logs: Path, log: Any
) -> dict[str, Any]:
    from serving.batch.remote import http_answerer

    env = {"SEQGPT_SPAN_TOKENS_PER_LABEL": str(SPAN_TOKENS_PER_LABEL)}
    results: dict[str, Any] = {}
    with ServerProcess(model, env=env, log_path=logs / f"server-{model.name}.log") as server:
        log(f"server up at {server.url}")
        for level in levels:

            async def run(c: int = level) -> dict[str, Any]:
                async with http_answerer(server.url, None, c) as runner:
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
    if args.render:
        args.report.write_text(render(json.loads(args.render.read_text("utf-8"))), "utf-8")
        return 0
    official = args.report.resolve() == (ROOT / "BATCH_BENCHMARK.md").resolve()
    if official and not args.allow_dirty and "uncommitted" in machine_facts()["commit"]:
        print("error: BATCH_BENCHMARK.md is generated from a clean commit: commit first.")
        return 2
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ["SEQGPT_SPAN_TOKENS_PER_LABEL"] = str(SPAN_TOKENS_PER_LABEL)
    started = time.monotonic()
    work = args.work or ROOT / "loadtest" / "reports" / time.strftime("batch-%Y%m%d-%H%M%S")
    arguments = shlex.join(sys.argv[1:] if argv is None else argv)
    command = f"python -m loadtest.batch_benchmark {arguments}"
    results: dict[str, Any] = {"command": command.strip(), "before": machine_facts(), "sizes": {}}
    for size in args.sizes:
        results["sizes"][size] = _measure_size(size, args, work, lambda m: _log(started, m))
    results["after"] = machine_facts()
    results["minutes"] = round((time.monotonic() - started) / 60, 1)
    # The official report's results are kept beside it in the repository (for --render).
    kept = [ROOT / "loadtest" / "batch_benchmark" / "results.json"] if official else []
    for path in [work / "results.json", *kept]:
        path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    args.report.write_text(render(results), encoding="utf-8")
    _log(started, f"wrote {args.report}; rows and results in {work}")
    return 0 if all_answered(results) else 1
