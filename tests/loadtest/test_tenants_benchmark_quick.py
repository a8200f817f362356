"""The tenants benchmark runs end to end on the tiny model and writes the figures BENCHMARKS.md
renders (``tests/unit/loadtest`` renders them); not a timed test: the figures are whatever this
machine gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_tenants_benchmark_measures_every_side_and_its_figures_render(
    tiny_model: Path, tmp_path: Path
) -> None:
    results = tmp_path / "tenants.json"
    command = [sys.executable, "-m", "loadtest.tenants_benchmark", "--size", "tiny", "--quick"]
    command += ["--model", str(tiny_model), "--results", str(results)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(results.read_text(encoding="utf-8"))
    assert figures["idle"]["p50_ms"] > 0
    for side in ("cli_batch", "cli_interactive", "batch_route"):
        assert figures[side]["rows_per_s_alone"] > 0, side  # the batch side did work
        assert figures[side]["p50_ms"] > 0, side
    assert [m["weights"] for m in figures["shares"]] == [[1, 1], [3, 1]]
    assert all(m["clients"] > figures["bound"] for m in figures["shares"])  # over the bound
    assert all(m["a"] > 0 and m["b"] > 0 for m in figures["shares"])
    assert figures["refusals"]["refused"] > 0  # the over-limit tenant was refused
    assert "torch kernel set" in figures["cpu"]
