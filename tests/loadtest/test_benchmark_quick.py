"""The benchmark's quick mode runs end to end and writes its report (not a timed test)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from serving.core.cpu import choose_dtype, cpu_facts

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = [
    "## Results",
    "## Machine, versions, command",
    "## How it is measured",
    "## 1. Our overhead",
    "## 2. Against the official way",
    "## 3. Extraction",
    "## 4. Scale",
    "## 5. Request options",
    "### 5a. A batch of",
    "### 5b. The cost of per-label scores",
    "### 5c. The latency cost of reference decoding",
    "### 5d. A long document: windowed by the server, or by the client",
    "## 6. bf16 against fp32 on this CPU",
    "## 7. Prefill against the matrix-multiply roof",
    "## The physical limit on one H100",
]


def test_quick_benchmark_writes_report_and_plots(tiny_model: Path, tmp_path: Path) -> None:
    report, plots = tmp_path / "BENCHMARKS.md", tmp_path / "plots"
    command = [sys.executable, "-m", "loadtest.benchmark", "--size", "tiny", "--quick"]
    command += ["--model", str(tiny_model), "--report", str(report), "--plots", str(plots)]
    command += ["--logs", str(tmp_path / "logs")]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    positions = [text.find(section) for section in SECTIONS]
    assert -1 not in positions, [s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) == 6
    for image in images:
        assert (report.parent / image).stat().st_size > 1000, image
    results = json.loads((plots / "benchmark.json").read_text(encoding="utf-8"))
    assert results["overhead"]["classify"]["1"]["errors"] == 0
    assert results["overhead"]["raw"]["1"]["errors"] == 0
    options = results["options"]
    for task in ("classify", "extract"):
        assert options["batch"][task]["batch"]["errors"] == 0
        assert options["batch"][task]["single"]["errors"] == 0
        for mode in ("fast", "reference"):
            assert options["reference"][task][mode]["errors"] == 0
    assert options["scores"]["scores"]["errors"] == options["scores"]["plain"]["errors"] == 0
    assert options["windows"]["whole"]["errors"] == options["windows"]["split"]["errors"] == 0
    assert options["windows"]["windows"] > 1
    for row in ("| 5a |", "| 5b |", "| 5c |", "| 5d |", "| tokenizer | byte-level BPE of"):
        assert row in text, row
    # The server's dtype as its /v1/status gave it: the launcher's choice for this CPU.
    choice = choose_dtype(cpu_facts())
    meta = results["meta"]
    assert meta["servers"] == {
        "prefix-on": {"device": "cpu", "dtype": choice.dtype, "cpu": str(cpu_facts())}
    }
    assert (meta["hf_dtype"], results["dtypes"]["chosen"]) == (choice.dtype, choice.dtype)
    assert all(row["errors"] == 0 for row in results["dtypes"][choice.dtype].values())
    assert f"servers, from their `/v1/status`: prefix-on {choice.dtype};" in text
    # Item 7: the roof in the servers' dtype with this CPU's capability, the defaults measured.
    prefill = results["prefill"]
    capability = torch.backends.cpu.get_cpu_capability()
    assert (prefill["roof"]["dtype"], prefill["roof"]["capability"]) == (choice.dtype, capability)
    assert prefill["roof"]["gflop_per_s"] > 0
    assert [row["name"] for row in prefill["configs"]] == ["defaults"]
    assert all(row["errors"] == 0 and row["rps"] > 0 for row in prefill["configs"])
    assert "| 7 | prefill at c=" in text
    assert f"**{choice.dtype}** with" in text
    assert f"capability **{capability}**" in text
