"""The benchmark's item 5: what the request options cost, each side by side on the same texts.

5a. A batch of texts on ``/v1/{task}/batch`` against the same texts as single requests all sent
at once; 5b. ``/v1/classify`` with ``"scores": true`` against without; 5c. ``"decoding":
"reference"`` (beam search, 4 beams) against the default ``"fast"``, one request at a time.
Which side goes first alternates between runs, so drift in a shared machine's load hits both.
"""

from __future__ import annotations

from statistics import median
from typing import Any

from loadtest.benchmark.driver import median_of
from loadtest.benchmark.measure import Bench
from loadtest.benchmark.measure_extract import pool_singles

__all__ = ["measure_batches", "measure_reference", "measure_scores"]

LANGUAGES = ("zh", "en")


def _order(first: str, second: str, repeat: int) -> tuple[str, str]:
    return (first, second) if repeat % 2 == 0 else (second, first)


def _warm(bench: Bench, url: str, kind: str, bodies: list[Any]) -> None:
    """One unmeasured round of a path, so its first-call costs stay out of the figures."""
    bench.cell(url, kind, bodies, len(bodies), f"warm-up {kind}")


def measure_batches(bench: Bench, url: str) -> dict[str, Any]:
    """5a: per task, one batch request of ``plan.batch_size`` texts against the same texts sent
    as single requests with that many clients (all at once). A batch has one label set, so each
    run takes texts of one language (alternating) and the first text's labels for all."""
    size = bench.plan.batch_size
    result: dict[str, Any] = {"size": size}
    for task in ("classify", "extract"):
        entry = bench.take(1)[0]
        labels = entry.classify_labels if task == "classify" else entry.extract_labels
        warm = {"texts": bench.work.texts([entry, entry]), "labels": list(labels)}
        _warm(bench, url, f"{task}_batch", [warm])
        runs: dict[str, list[dict[str, float]]] = {"batch": [], "single": []}
        for repeat in range(bench.plan.repeats):
            entries = bench.take_language(size, LANGUAGES[repeat % 2])
            first = entries[0]
            labels = list(first.classify_labels if task == "classify" else first.extract_labels)
            for side in _order("batch", "single", repeat):
                texts = bench.work.texts(entries)  # fresh tags: no side reuses the other's cache
                if side == "batch":
                    body = {"texts": texts, "labels": labels}
                    cell = bench.cell(url, f"{task}_batch", [body], 1, f"5a. {task} batch")
                    # One request: its latency is the time to answer every text; its
                    # tokens are per text, as the single calls' are.
                    cell["seconds"], cell["texts_per_s"] = cell["p50"], size / cell["p50"]
                    for key in ("prompt_tokens", "completion_tokens"):
                        cell[key] /= size
                else:
                    bodies = [{"text": text, "labels": labels} for text in texts]
                    cell = bench.cell(url, task, bodies, size, f"5a. {task} single")
                    seconds = size / cell["rps"] if cell["rps"] else float("nan")
                    cell["seconds"], cell["texts_per_s"] = seconds, cell["rps"]
                runs[side].append(cell)
        pairs = zip(runs["batch"], runs["single"], strict=True)
        merged = {side: median_of(cells) for side, cells in runs.items()}
        merged["paired_ratio"] = median(b["texts_per_s"] / s["texts_per_s"] for b, s in pairs)
        result[task] = merged
    return result


def measure_scores(bench: Bench, url: str) -> dict[str, Any]:
    """5b: /v1/classify req/s with ``"scores": true`` against without, at a fixed concurrency."""
    c = bench.plan.scores_concurrency
    _warm(
        bench, url, "classify", [{**b, "scores": True} for b in bench.work.classify(bench.take(2))]
    )
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "scores": []}
    for repeat in range(bench.plan.repeats):
        entries = bench.take(bench.plan.requests_at(c))
        for side in _order("plain", "scores", repeat):
            bodies = bench.work.classify(entries)
            if side == "scores":
                bodies = [{**body, "scores": True} for body in bodies]
            runs[side].append(bench.cell(url, "classify", bodies, c, f"5b. classify {side}"))
    pairs = zip(runs["scores"], runs["plain"], strict=True)
    result: dict[str, Any] = {side: median_of(cells) for side, cells in runs.items()}
    result["paired_ratio"] = median(a["rps"] / b["rps"] for a, b in pairs)
    result["concurrency"] = c
    return result


def measure_reference(bench: Bench, url: str, task: str) -> dict[str, Any]:
    """5c: one request at a time, each text in both modes back to back (order alternating);
    the ratio is the median of the per-text latency ratios."""
    make = bench.work.classify if task == "classify" else bench.work.extract
    _warm(bench, url, task, [{**make(bench.take(1))[0], "decoding": "reference"}])
    samples: dict[str, list[dict[str, float]]] = {"fast": [], "reference": []}
    ratios = []
    for repeat in range(bench.plan.repeats):
        for i, entry in enumerate(bench.take(bench.plan.reference_n)):
            pair = {}
            for mode in _order("fast", "reference", repeat + i):
                body = {**make([entry])[0], "decoding": mode}
                pair[mode] = bench.cell(url, task, [body], 1, f"5c. {task} {mode}")
                samples[mode].append(pair[mode])
            ratios.append(pair["reference"]["p50"] / pair["fast"]["p50"])
    result: dict[str, Any] = {mode: pool_singles(runs) for mode, runs in samples.items()}
    result["paired_ratio"] = median(ratios)
    return result
