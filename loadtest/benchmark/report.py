"""``BENCHMARKS.md`` and its plots from the benchmark's results; re-render without measuring:

python -m loadtest.benchmark.report loadtest/benchmark/plots/benchmark.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from loadtest.benchmark.plots import draw_all
from loadtest.benchmark.report_text import render

__all__ = ["APART", "main", "measured_apart", "write_report"]

ROOT = Path(__file__).resolve().parents[2]


APART = {
    "api_cost": ROOT / "loadtest" / "results" / "api_cost.json",
    "schema": ROOT / "loadtest" / "results" / "schema.json",
    "scores": ROOT / "loadtest" / "results" / "scores.json",
    "prefill_profile": ROOT / "loadtest" / "results" / "prefill_profile.json",
    "tenants": ROOT / "loadtest" / "results" / "tenants.json",
}
"""The committed figures of the programs that measure on their own, rendered in the report."""


def measured_apart() -> dict[str, Any]:
    """Each program's last committed figures (``APART``), where it has run."""
    return {
        name: json.loads(path.read_text(encoding="utf-8"))
        for name, path in APART.items()
        if path.exists()
    }


def write_report(results: dict[str, Any], report: Path, plots: Path) -> None:
    """Write the plots, the results as JSON beside them, and the Markdown report (with the
    figures measured apart)."""
    levels = list(results["overhead"]["classify"])
    ours_level = "32" if "32" in levels else levels[-1]
    paths = draw_all(results, plots, ours_level)
    (plots / "benchmark.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    links = {name: os.path.relpath(path, report.parent) for name, path in paths.items()}
    report.parent.mkdir(parents=True, exist_ok=True)
    text = render(results, links, ours_level, measured_apart())
    report.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Re-render the report and plots from a results JSON."""
    parser = argparse.ArgumentParser(description="Re-render BENCHMARKS.md from results JSON.")
    parser.add_argument("results", type=Path)
    parser.add_argument("--report", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--plots", type=Path, default=ROOT / "loadtest" / "benchmark" / "plots")
    args = parser.parse_args(argv)
    write_report(json.loads(args.results.read_text(encoding="utf-8")), args.report, args.plots)


if __name__ == "__main__":
    main()
