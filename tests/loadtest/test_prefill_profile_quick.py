"""The prefill profile runs end to end on the tiny model: py-spy finds the model runner's main
thread and its shares of an engine step add up; not a timed test: the figures are whatever this
machine gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_prefill_profile_splits_the_runners_time_into_the_parts_of_a_step(
    tiny_model: Path, tmp_path: Path
) -> None:
    results = tmp_path / "profile.json"
    command = [sys.executable, "-m", "loadtest.prefill_profile", "--size", "tiny"]
    command += ["--model", str(tiny_model), "--repeats", "2", "--results", str(results)]
    # The tiny model's cell lasts about a second, and its forward is a fifth of the runner's
    # time: at py-spy's default 20 samples a second a run can miss it altogether.
    command += ["--rate", "250"]
    command += ["--logs", str(tmp_path / "logs")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=550)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(results.read_text(encoding="utf-8"))
    assert sum(figures["shares"].values()) == pytest.approx(1.0)
    # py-spy found the model's forward among the runner's frames (the split looks for its name)
    assert figures["shares"]["layers' forward"] > 0
    assert figures["served_gflop_per_s"] > 0
    assert "torch kernel set" in figures["cpu"]
