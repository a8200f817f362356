"""The benchmark report: golden files pin its every byte; item 5 and the model lines state their
ratios, goals and facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadtest.benchmark.report_text import render
from tests.golden import load_regenerate

GOLDEN_DIR = Path(__file__).parent / "report_golden"


REGENERATE = load_regenerate(GOLDEN_DIR, "report_regenerate")
CASES: tuple[Any, ...] = REGENERATE.CASES


def test_golden_files_are_exactly_the_cases() -> None:
    assert {path.stem for path in GOLDEN_DIR.glob("*.md")} == {case.name for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_golden_report_bytes(case: Any) -> None:
    """Render the case with today's report: any changed byte in the file fails here."""
    assert REGENERATE.render(case) == (GOLDEN_DIR / f"{case.name}.md").read_bytes()


def _row(rps: float, p50: float, **extra: float) -> dict[str, float]:
    row = {"rps": rps, "p50": p50, "p95": p50 * 1.5, "prompt_tokens": 40.0}
    return {**row, "completion_tokens": 2.0, "errors": 0.0, "n": 6.0, "repeats": 3.0, **extra}


def _options(scores_ratio: float) -> dict[str, Any]:
    batch = {
        task: {
            "batch": _row(1.0, 4.0, texts_per_s=16.0, seconds=4.0),
            "single": _row(12.8, 2.0, texts_per_s=12.8, seconds=5.0),
            "paired_ratio": 1.25,
        }
        for task in ("classify", "extract")
    }
    pair = {"fast": _row(2.0, 0.5), "reference": _row(1.0, 1.5), "paired_ratio": 3.0}
    return {
        "batch": {"size": 64, **batch},
        "scores": {
            "plain": _row(8.0, 1.0),
            "scores": _row(8.0 * scores_ratio, 1.0),
            "paired_ratio": scores_ratio,
            "concurrency": 16,
        },
        "reference": {"classify": pair, "extract": pair},
        "windows": {
            "whole": _row(1.0, 8.0, seconds=8.0),
            "split": _row(0.5, 6.0, seconds=6.0),
            "paired_ratio": 1.3,
            "windows": 4,
            "characters": 9000,
            "document_tokens": 7000,
            "cache": False,
        },
    }


def _results(scores_ratio: float = 0.97) -> dict[str, Any]:
    """The real run's results (the golden ``full`` case) with these options."""
    results: dict[str, Any] = CASES[0].results()
    results["options"] = _options(scores_ratio)
    return results


def _report(results: dict[str, Any]) -> str:
    names = ["overhead", "baselines", "extraction", "scale", "options"]
    return render(results, {name: f"plots/{name}.png" for name in names}, "32")


def _line(text: str, start: str) -> str:
    """The one line of the report that starts with ``start``."""
    [line] = [line for line in text.splitlines() if line.startswith(start)]
    return line


def test_the_summary_has_a_row_per_option_and_judges_the_scores_goal() -> None:
    text = _report(_results(0.97))
    assert "classify 1.25×, extract 1.25×" in _line(text, "| 5a |")
    assert "(c=64)" in _line(text, "| 5a |")
    assert "0.97×, a cost of 3%" in _line(text, "| 5b |")
    assert "**met**" in _line(text, "| 5b |")
    assert "**not met**" in _line(_report(_results(0.40)), "| 5b |")
    assert "1.10×, no cost (faster)" in _line(_report(_results(1.1)), "| 5b |")
    assert "classify 3.00×, extract 3.00×" in _line(text, "| 5c |")
    assert "9,000-character document" in _line(text, "| 5d |")
    assert "4 windows) ÷ the same 4 windows" in _line(text, "| 5d |")
    assert "| 1.30× |" in _line(text, "| 5d |")


def test_the_section_states_what_each_side_is() -> None:
    text = _report(_results())
    for fact in [
        "| classify | one `/v1/classify/batch` | 16.00 | 4.00 | – |",
        "| classify | 64 × `/v1/classify` | 12.80 | 5.00 | 2.00 / 3.00 |",
        "64 clients with one request each",
        "| without scores | 8.00 |",
        "answer budget is 4 tokens",
        "| extract | `reference` (beam 4) | 1.50 / 2.25 |",
        "| the whole document to `/v1/extract` | 8.00 | 40 | 2 | 3 |",
        "| its 4 windows as 4 `/v1/extract` calls sent at once | 6.00 | 160 | 8 | 3 |",
        "without prefix caching",
        "![options](plots/options.png)",
    ]:
        assert fact in text, fact


def test_results_without_options_render_as_not_measured() -> None:
    results = _results()
    del results["options"]["windows"]
    text = _report(results)
    assert "not measured" in _line(text, "| 5d |")
    assert "### 5d. A long document in windows\n\nNot measured in this run.\n" in text
    del results["options"], results["meta"]["tokenizer"]
    text = _report(results)
    assert "not measured" in _line(text, "| 5 |")
    assert "## 5." not in text
    assert "![options]" not in text
    assert "not measured" in _line(text, "| tokenizer |")


def test_the_server_line_says_compiled_or_eager() -> None:
    results = _results()
    assert "compiled as `make serve` runs it" in _line(_report(results), "| server |")
    results["plan"]["enforce_eager"] = True
    assert "--enforce-eager` (eager" in _line(_report(results), "| server |")


def test_the_tokenizer_line_gives_tokens_per_character_before_and_after() -> None:
    results = _results()
    results["meta"]["tokenizer"] = {
        "vocabulary": 32000,
        "tokens_per_char": {"all": 0.4, "zh": 0.75, "en": 0.26},
        "before": {"vocabulary": 759, "tokens_per_char": {"all": 1.5, "zh": 2.3, "en": 0.8}},
    }
    row = _line(_report(results), "| tokenizer |")
    assert "32,000 tokens" in row
    assert "**0.40** (Chinese 0.75, English 0.26)" in row
    assert "759-token BPE" in row
    assert "**1.50** (Chinese 2.30, English 0.80)" in row


def test_the_options_plot_is_drawn(tmp_path: Path) -> None:
    from loadtest.benchmark.plots import options

    options(_results(), tmp_path / "options.png")
    assert (tmp_path / "options.png").stat().st_size > 1000


def _with_dtypes(*sides: str) -> dict[str, Any]:
    """The real run's results as if measured with the launcher's dtype (fp32: an AVX2 CPU) on
    every server and item 6 on ``sides``."""
    results = _results()
    servers = {"prefix-on": "float32", "dtype-float32": "float32", "dtype-bfloat16": "bfloat16"}
    cpu = "x86_64 AVX2, no native bf16"
    results["meta"].update(
        cpu=cpu,
        dtype_choice={"dtype": "float32", "reason": "this CPU has AVX2 but no native bf16"},
        servers={name: {"device": "cpu", "dtype": d, "cpu": cpu} for name, d in servers.items()},
        hf_dtype="float32",
    )
    rows = {"float32": (5.0, 12.0), "bfloat16": (0.5, 1.0)}
    results["dtypes"] = {"chosen": "float32"} | {
        side: {"1": _row(rows[side][0], 0.2), "16": _row(rows[side][1], 1.3)} for side in sides
    }
    return results


def test_the_machine_table_says_the_cpu_and_the_dtype_of_every_run() -> None:
    text = _report(_with_dtypes("float32", "bfloat16"))
    assert _line(text, "| CPU, as torch sees it |") == (
        "| CPU, as torch sees it | x86_64 AVX2, no native bf16; the launcher serves **float32** "
        "here: this CPU has AVX2 but no native bf16 |"
    )
    assert _line(text, "| dtype of each run |") == (
        "| dtype of each run | servers, from their `/v1/status`: prefix-on float32, dtype-float32 "
        "float32, dtype-bfloat16 bfloat16; Hugging Face baselines float32 |"
    )
    old = _report(_results())  # a run from before: what its servers served is known anyway
    assert "vLLM's `auto`, the checkpoint's bf16" in _line(old, "| dtype of each run |")


def test_item_6_gives_fp32_over_bf16_at_each_concurrency() -> None:
    text = _report(_with_dtypes("float32", "bfloat16"))
    assert "| c=1: 10.00×, c=16: 12.00× | none |" in _line(text, "| 6 | plain")
    assert "| float32 | the launcher's choice | 1 | 5.00 |" in text
    assert "| bfloat16 | `--dtype bfloat16` | 16 | 1.00 |" in text
    assert "fp32 ÷ bf16, req/s: c=1 **10.00×**, c=16 **12.00×**." in text


def test_item_6_of_a_quick_run_has_the_launchers_dtype_only() -> None:
    text = _report(_with_dtypes("float32"))
    assert "float32 only (`--quick` starts one server)" in _line(text, "| 6 | plain")
    assert "Only the launcher's choice, float32, was measured" in text
    assert "| bfloat16 |" not in text


API_COST = {
    "command": "python -m loadtest.api_cost --profile",
    "commit": "abc1234",
    "cpu": "AMD EPYC (2 cores), torch kernel set AVX2",
    "load_average": [0.5, 0.6, 0.7],
    "model": "tiny in float32",
    "clients": 64,
    "cpu_ms": {"classify": 5.5, "completions": 6.0},
    "ratio": 0.93,
    "profile": {"classify": [["Runner.run (asyncio/runners.py)", 0.3]], "raw": []},
    "processes": {"rps": [60.0, 66.0], "cpu_ms": [5.5, 9.0], "share": 0.95},
}
SCHEMA = {
    "command": "python -m loadtest.schema_benchmark --repeats 15",
    "commit": "abc1234",
    "cpu": "AMD EPYC (2 cores), torch kernel set AVX2",
    "load_average": [0.5, 0.6, 0.7],
    "repeats": 15,
    "ms": {"schema": 300.0, "separate": 400.0},
    "prompts": {"schema": 5, "separate": 5},
    "ratio": 0.75,
}


def _cap(ratio: float, starvation: float) -> dict[str, Any]:
    throughput = {"plain": _row(2.0, 7.0), "scores": _row(2.0 * ratio, 12.0)}
    starved = {"idle_ms": 300.0, "busy_ms": 300.0 * starvation, "scored_p50_ms": 9000.0}
    return {
        "throughput": {**throughput, "paired_ratio": ratio, "concurrency": 16},
        "starvation": {**starved, "ratio": starvation},
    }


SCORES = {
    "command": "python -m loadtest.scores_benchmark --size 560m --caps default 1024",
    "commit": "abc1234",
    "cpu": "AMD EPYC (2 cores), torch kernel set AVX2",
    "load_average": [0.5, 0.6, 0.7],
    "model": "560m in float32",
    "repeats": 2,
    "scorers": 8,
    "caps": {"default": _cap(0.55, 1.8), "1024": _cap(0.62, 3.4)},
}


def test_scores_per_cap_are_rows_judged_on_both_goals_and_a_section() -> None:
    names = ["overhead", "baselines", "extraction", "scale", "options"]
    plots = {name: f"plots/{name}.png" for name in names}
    text = render(_results(), plots, "32", {"scores": SCORES})
    rows = [line for line in text.splitlines() if line.startswith("| 10 |")]
    assert len(rows) == 2
    assert "at once (idle/beside a task prompt): default." in rows[0]
    assert "| 0.55×; 1.8× | ≥ 0.5×; ≤ 3× | **met** |" in rows[0]
    assert "| 0.62×; 3.4× | ≥ 0.5×; ≤ 3× | **not met** |" in rows[1]
    section = text.split("## 10.")[1]
    assert "`python -m loadtest.scores_benchmark --size 560m --caps default 1024`" in section
    assert "at commit abc1234, on AMD EPYC (2 cores), torch kernel set AVX2" in section
    assert "| default | 2.00 | 1.10 | **0.55** | 300 ms | 540 ms | **1.8** |" in section
    text = render(_results(), plots, "32", {})
    assert "| 10 | scores ÷ plain req/s" in text
    assert "not measured (`python -m loadtest.scores_benchmark`)" in _line(text, "| 10 |")


def test_the_figures_measured_apart_are_rows_and_sections_with_their_provenance() -> None:
    """Items 8 and 9 come from their own programs' JSON: the results table states their ratios
    against the goal, each section names the command, commit and CPU that measured it."""
    names = ["overhead", "baselines", "extraction", "scale", "options"]
    plots = {name: f"plots/{name}.png" for name in names}
    text = render(_results(), plots, "32", {"api_cost": API_COST, "schema": SCHEMA})
    assert "| 0.93× (5.50 vs 6.00 ms) | ≤ 1.00× | **met** |" in _line(text, "| 8 | API process")
    assert "| 1.10× (66.0 vs 60.0 req/s) |" in _line(text, "| 8 | `/v1/classify` req/s, 2 API")
    assert "| 0.75× (5 prompts each way) |" in _line(text, "| 9 |")
    section = text.split("## 8.")[1].split("## 9.")[0]
    assert "`python -m loadtest.api_cost --profile` measures it" in section
    assert "at commit abc1234, on AMD EPYC (2 cores), torch kernel set AVX2" in section
    assert "1. 30.0% `Runner.run (asyncio/runners.py)`" in section
    assert "| schema ÷ separate | **0.75** |" in text.split("## 9.")[1]
    over = {**API_COST, "ratio": 1.01}
    text = render(_results(), plots, "32", {"api_cost": over})
    assert "| ≤ 1.00× | **not met** |" in _line(text, "| 8 | API process")
    assert "| 9 | a two-level schema request ÷ separate extractions | not measured" in text


def test_item_8_puts_the_engines_cpu_beside_the_api_process_for_the_same_engine_request() -> None:
    """Figures with the engine's processes measured: the row names both ratios, the section's
    table has req/s and both CPU columns, and says why the engine's ratio is not its work."""
    names = ["overhead", "baselines", "extraction", "scale", "options"]
    plots = {name: f"plots/{name}.png" for name in names}
    engine = {"engine_cpu_ms": {"classify": 5.0, "completions": 4.0}, "engine_ratio": 1.25}
    figures = {**API_COST, **engine, "rps": {"classify": 300.0, "completions": 320.0}}
    text = render(_results(), plots, "32", {"api_cost": {**figures, "rps_ratio": 0.94}})
    row = _line(text, "| 8 | API process")
    assert "0.93× (5.50 vs 6.00 ms; the engine's processes 1.25×, 5.00 vs 4.00 ms" in row
    section = text.split("## 8.")[1].split("## 9.")[0]
    assert "| `/v1/classify` | 300.0 | 5.50 | 5.00 |" in section
    assert "| the same prompt on `/v1/completions` | 320.0 | 6.00 | 4.00 |" in section
    assert "| ours ÷ completions | **0.94** | **0.93** | **1.25** |" in section
    assert "tests/api/test_engine_request.py" in section
    assert "torch kernel set AVX2" in section


PREFILL_PROFILE = {
    "command": "python -m loadtest.prefill_profile --repeats 3",
    "commit": "abc1234",
    "cpu": "AMD EPYC (2 cores), torch kernel set AVX512",
    "load_average": [0.5, 0.4, 0.3],
    "dtype": "bfloat16",
    "roof_gflop_per_s": 900.0,
    "served_gflop_per_s": 600.0,
    "in_forward_gflop_per_s": 750.0,
    "shares": {
        "output layer": 0.05,
        "layers' forward": 0.75,
        "sampling": 0.08,
        "waiting for the next step": 0.12,
        "the rest of the runner": 0.0,
    },
}


def test_the_prefill_profile_is_a_section_with_its_shares_and_both_rates_against_the_roof() -> None:
    names = ["overhead", "baselines", "extraction", "scale", "options"]
    plots = {name: f"plots/{name}.png" for name in names}
    text = render(_results(), plots, "32", {"prefill_profile": PREFILL_PROFILE})
    section = text.split("### 7b.")[1].split("## 8.")[0]
    assert "`python -m loadtest.prefill_profile --repeats 3` at commit abc1234" in section
    assert "| waiting for the next step | 12% |" in section
    assert "**600 GFLOP/s**, 67% of that run's roof (900 GFLOP/s)" in section
    assert "**750 GFLOP/s**, 83% of it" in section
    assert "### 7b." not in render(_results(), plots, "32", {})


TENANTS = {
    "command": "python -m loadtest.tenants_benchmark --size 560m",
    "commit": "abc1234",
    "cpu": "AMD EPYC (2 cores), torch kernel set AVX512",
    "load_average": [0.5, 0.4, 0.3],
    "model": "560m in bfloat16",
    "sizes": {"window_s": 60.0, "warm_s": 15.0, "probes": 25},
    "probe_gap_s": 1.0,
    "bound": 256,
    "refused_clients": 400,
    "limited_rpm": 60,
    "idle": {"p50_ms": 200.0, "p95_ms": 300.0},
    "cli_batch": {"p50_ms": 300.0, "p95_ms": 600.0, "rows_per_s_alone": 10.0, "rows_per_s": 8.5},
    "cli_interactive": {
        "p50_ms": 4000.0,
        "p95_ms": 9000.0,
        "rows_per_s_alone": 10.0,
        "rows_per_s": 9.0,
    },
    "batch_route": {"p50_ms": 380.0, "p95_ms": 800.0, "rows_per_s_alone": 12.0, "rows_per_s": 9.0},
    "shares": [
        {"weights": [1, 1], "clients": 384, "a": 100, "b": 96},
        {"weights": [3, 1], "clients": 384, "a": 150, "b": 52},
    ],
    "refusals": {
        "refused": 3600,
        "refusal_p50_ms": 4.2,
        "search_p50_ms": 210.0,
        "search_ratio": 1.05,
    },
}
for _side in ("cli_batch", "cli_interactive", "batch_route"):
    TENANTS[_side]["kept"] = TENANTS[_side]["rows_per_s"] / TENANTS[_side]["rows_per_s_alone"]
for _share in TENANTS["shares"]:
    _share["a_part"] = _share["a"] / (_share["a"] + _share["b"])


def test_the_tenants_figures_are_a_section_with_each_side_against_idle() -> None:
    names = ["overhead", "baselines", "extraction", "scale", "options"]
    plots = {name: f"plots/{name}.png" for name in names}
    section = render(_results(), plots, "32", {"tenants": TENANTS}).split("## 11.")[1]
    assert "`python -m loadtest.tenants_benchmark --size 560m` at commit abc1234" in section
    assert "| none (idle) | 200 ms | 1 | 300 ms | 1 |" in section
    row = "| batch CLI, its default priority (batch) | 300 ms | **1.5** | 600 ms | **2.0** | 10.0"
    assert row + " | 8.5 | **85 %** |" in section
    assert "| 3:1 | 150 | 52 | **74 %** |" in section
    assert "in-flight bound (256 prompts): two tenants, each with more" in section
    assert "(384 each: both are refused" in section
    assert "answers 429 at a median of **4.2 ms**" in section
    assert "**1.05×** its p50 just before" in section
    text = render(_results(), plots, "32", {})
    assert "`python -m loadtest.tenants_benchmark` writes" in text.split("## 11.")[1]
