"""The API-cost benchmark runs end to end on the tiny model and writes its report (not a timed
test: the figures are whatever this machine gives)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_api_cost_measures_both_sides_and_profiles_the_api_process(
    tiny_model: Path, tmp_path: Path
) -> None:
    report = tmp_path / "API_BENCHMARK.md"
    command = [sys.executable, "-m", "loadtest.api_cost", "--model", str(tiny_model)]
    command += ["--one-process", "--profile", "--requests", "24", "--clients", "8"]
    command += ["--repeats", "2", "--report", str(report), "--logs", str(tmp_path / "logs")]
    command += ["--results", str(tmp_path / "api_cost.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    rows = {
        side: (float(api), float(engine))
        for side, api, engine in re.findall(
            r"^\| (`/v1/classify`|same prompt on `/v1/completions`) \| [\d.]+ \| ([\d.]+) \| "
            r"([\d.]+) \|",
            text,
            re.M,
        )
    }
    assert set(rows) == {"`/v1/classify`", "same prompt on `/v1/completions`"}
    # The API process's CPU was read, and the engine's processes' beside it.
    assert all(api > 0 and engine > 0 for api, engine in rows.values())
    assert re.search(r"ours ÷ completions .* \*\*\d+\.\d\d\*\* \| \*\*\d+\.\d\d\*\* \|", text)
    assert "torch kernel set" in text
    # py-spy found the API process in our route while /v1/classify ran, in vLLM's while
    # /v1/completions did.
    profiles = text.split("Where the API process ran during")[1:]
    assert len(profiles) == 2
    raw_stacks = (tmp_path / "logs" / "profile-classify.txt").read_text()
    assert "serving/http/routes.py" in raw_stacks
    assert "serving/http/routes.py" not in (tmp_path / "logs" / "profile-raw.txt").read_text()
    # The figures BENCHMARKS.md renders: the same ratio, the profiles' top entries.
    figures = json.loads((tmp_path / "api_cost.json").read_text(encoding="utf-8"))
    assert f"**{figures['ratio']:.2f}**" in text
    assert f"**{figures['engine_ratio']:.2f}**" in text
    assert figures["engine_cpu_ms"]["classify"] > 0
    assert "torch kernel set" in figures["cpu"]
    assert figures["command"] == "python -m loadtest.api_cost --profile"
    assert set(figures["profile"]) == {"classify", "raw"}
