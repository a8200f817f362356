"""Write the golden benchmark reports: ``python tests/unit/loadtest/report_golden/regenerate.py``.

``run_560m.json`` is the results of a real full run (``make benchmark``, commit a0c9731, as
``loadtest/benchmark/plots/benchmark.json`` kept it), from before the launcher chose the dtype.
``dtypes_avx2.json`` is item 6 alone (``measure_dtypes`` of the full plan on the 560m model, commit
3b343dd) on an AVX2-only machine of the same kind, with the CPU and servers that run recorded.
``prefill_avx2.json`` is item 7 alone (``PrefillSweep`` of the full plan, every config on a server
of its own, on the 560m model, branch ``sweep``) on that machine, under another job's load.
Each case edits a copy into another shape
the report must handle (a ``--quick`` run, goals not met, results from before an item existed)
and becomes ``<name>.md``, the exact ``BENCHMARKS.md`` our report makes of it. Run it only when
the report is meant to change, then read the diff: ``test_benchmark_report.py`` fails on any byte
that differs from what the report makes now.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parent
ROOT = GOLDEN_DIR.parents[3]
PLOTS = ["overhead", "baselines", "extraction", "scale", "options"]
DTYPES = ("float32", "bfloat16")


def _full(results: dict[str, Any]) -> None:
    """The run as measured: 560m, compiled servers, every item; the scores goal not met."""
    del results  # kept as measured


def _quick(results: dict[str, Any]) -> None:
    """A ``--quick`` run on the tiny model (one eager server): the summary's goals not met, rows
    without paired ratios or cache figures."""
    meta, plan = results["meta"], results["plan"]
    meta.update(size="tiny", elapsed_s=42.0)
    meta["command"] = "python -m loadtest.benchmark --size tiny --quick"
    plan.update(repeats=1, hf_official_n=1, hf_batched_n=2, hf_batch_size=2)
    plan.update(extract_throughput_concurrency=2, prefix_off_server=False, enforce_eager=True)
    plan.update(reference_server=False, batch_size=4, scores_concurrency=2)
    for side in ("classify", "raw"):
        rows = results["overhead"][side]
        results["overhead"][side] = {"1": rows["1"], "4": rows["8"]}
    ours = results["overhead"]["classify"]
    del ours["1"]["paired_ratio"]
    ours["4"]["paired_ratio"] = 0.86
    results["hf"]["official"]["rps"] = 2.0  # ours 4.75× official
    for kind in ("classify", "extract"):
        rows = results["scale"][kind]
        results["scale"][kind] = {"1": rows["1"], "4": rows["4"]}
    latency = results["extract_latency"]["13"]
    del latency["paired_ratio"]
    latency.update(p50=2.0, p95=2.4)  # 1.73× the 6-label p50
    results["extract_throughput"]["off"] = None
    del results["extract_throughput"]["on"]["prefix_hit_rate"]
    options = results["options"]
    options["batch"]["size"] = 4
    options["scores"].update(paired_ratio=1.08, concurrency=2)  # faster: no cost
    options["windows"].update(windows=2, characters=5012, document_tokens=4530, cache=True)
    # Recorded on an AVX2-only CPU; item 6 on the one server: the launcher's dtype only.
    cpu = "x86_64 AVX2, no native bf16"
    reason = "this CPU has AVX2 but no native bf16 (AVX-512-bf16/AMX)"
    meta.update(cpu=cpu, dtype_choice={"dtype": "float32", "reason": reason}, hf_dtype="float32")
    meta["servers"] = {"prefix-on": {"device": "cpu", "dtype": "float32", "cpu": cpu}}
    plan.update(dtype_levels=[1, 2], dtype_servers=False)
    rows = results["overhead"]["classify"]
    results["dtypes"] = {"chosen": "float32", "float32": {"1": rows["1"], "2": rows["4"]}}


def _no_windows(results: dict[str, Any]) -> None:
    """Results from before item 5d and the tokenizer facts: no windows, no tokenizer line."""
    del results["options"]["windows"]
    del results["meta"]["tokenizer"]
    results["extract_throughput"]["off"]["prefix_hit_rate"] = None


def _dtypes(results: dict[str, Any]) -> None:
    """The full run as an AVX2-only CPU records it: every server and the Hugging Face baselines
    in the launcher's fp32, and item 6 as measured on such a CPU."""
    avx2 = json.loads((GOLDEN_DIR / "dtypes_avx2.json").read_text("utf-8"))
    meta = results["meta"]
    meta.update(cpu=avx2["cpu"], dtype_choice=avx2["dtype_choice"], hf_dtype="float32")
    fp32 = avx2["servers"]["dtype-float32"]
    meta["servers"] = dict.fromkeys(("prefix-on", "prefix-off", "reference"), fp32)
    meta["servers"].update({f"dtype-{d}": avx2["servers"][f"dtype-{d}"] for d in DTYPES})
    results["plan"].update(dtype_levels=[1, 16], dtype_servers=True)
    results["dtypes"] = avx2["dtypes"]


def _prefill(results: dict[str, Any]) -> None:
    """The AVX2 run with item 7 as measured there (its short run: every config on a server of
    its own, the main server's config too)."""
    _dtypes(results)
    prefill = json.loads((GOLDEN_DIR / "prefill_avx2.json").read_text("utf-8"))
    configs = [row["name"] for row in prefill["configs"]]
    results["plan"].update(prefill_configs=configs, prefill_concurrency=32, prefill_requests=32)
    results["plan"].update(prefill_text_tokens=40, roof_tokens=2048)
    results["prefill"] = prefill


def _no_options(results: dict[str, Any]) -> None:
    """Results from before item 5 (no options, no options plot), the compiled servers and the
    machine's facts after the run."""
    del results["options"]
    del results["meta"]["tokenizer"], results["meta"]["after"], results["meta"]["elapsed_s"]
    for key in ("enforce_eager", "reference_server", "reference_max_new_tokens"):
        del results["plan"][key]


@dataclass(frozen=True)
class Case:
    """One golden report: the real run's results, edited into one shape."""

    name: str
    edit: Callable[[dict[str, Any]], None]

    def results(self) -> dict[str, Any]:
        """The measured run with this case's edits."""
        results: dict[str, Any] = json.loads((GOLDEN_DIR / "run_560m.json").read_text("utf-8"))
        self.edit(results)
        return results


CASES: tuple[Case, ...] = (
    Case("full", _full),
    Case("quick", _quick),
    Case("no_windows", _no_windows),
    Case("no_options", _no_options),
    Case("dtypes", _dtypes),
    Case("prefill", _prefill),
)


def render(case: Case) -> bytes:
    """The report of the case, as ``write_report`` writes it for the default paths."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from loadtest.benchmark.report_text import render as render_report

    results = case.results()
    names = PLOTS if results.get("options") else PLOTS[:-1]
    names += ["prefill"] if results.get("prefill") else []
    links = {name: f"loadtest/benchmark/plots/{name}.png" for name in names}
    levels = list(results["overhead"]["classify"])
    ours_level = "32" if "32" in levels else levels[-1]  # as write_report picks it
    return render_report(results, links, ours_level).encode("utf-8")


def main() -> None:
    """Write every case's golden file."""
    for case in CASES:
        (GOLDEN_DIR / f"{case.name}.md").write_bytes(render(case))
    sys.stdout.write(f"wrote {len(CASES)} golden reports to {GOLDEN_DIR}\n")


if __name__ == "__main__":
    main()
