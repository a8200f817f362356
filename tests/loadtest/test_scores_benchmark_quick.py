"""The scores benchmark runs end to end on the tiny model and writes the figures BENCHMARKS.md
renders (``tests/unit/loadtest`` renders them); not a timed test: the figures are whatever this
machine gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_scores_benchmark_measures_each_cap_and_its_figures_render(
    tiny_model: Path, tmp_path: Path
) -> None:
    results = tmp_path / "scores.json"
    command = [sys.executable, "-m", "loadtest.scores_benchmark", "--size", "tiny"]
    command += ["--model", str(tiny_model), "--quick", "--repeats", "1", "--caps", "default", "2/1"]
    command += ["--results", str(results), "--logs", str(tmp_path / "logs")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(results.read_text(encoding="utf-8"))
    assert list(figures["caps"]) == ["default", "2/1"]
    for cap in figures["caps"].values():
        assert cap["throughput"]["scores"]["errors"] == 0
        assert cap["throughput"]["scores"]["rps"] > 0
        assert cap["starvation"]["idle_ms"] > 0
        assert cap["starvation"]["busy_ms"] > 0
    assert "torch kernel set" in figures["cpu"]
    assert figures["model"].startswith("tiny in ")  # the launcher's dtype for this CPU
