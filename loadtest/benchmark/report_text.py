"""The Markdown text of ``BENCHMARKS.md`` (pure: results in, text out).

Python judges, the template writes: this module computes what the report concludes from the
results (the ratios, whether each goal is met, the peak, the rows of the scale table) and fills in
what results from older runs lack; ``BENCHMARKS.md.jinja`` beside it holds every word and number
format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from loadtest.benchmark.flops import Shape, prefill_gflop

__all__ = ["GOALS", "prefill_summary", "render"]

# Lowest (highest for ``chunks``) ratio that meets each goal of the results table.
GOALS = {
    "overhead": 0.95,
    "official": 10.0,
    "chunks": 1.3,
    "scores": 0.5,  # a scored request reads every label: half of plain throughput
    "starvation": 3.0,  # the highest: plain latency under scores load ÷ idle
    "prefill": 0.8,
    "api_cost": 1.0,  # the highest that meets it
}
GFLOP_PER_PROMPT_TOKEN = 0.6  # 2 × SeqGPT-560M's ~0.3 B non-embedding parameters

_JINJA = Environment(
    loader=FileSystemLoader(Path(__file__).parent),
    undefined=StrictUndefined,  # a misspelt name fails instead of printing nothing
    autoescape=False,  # Markdown, not HTML
    keep_trailing_newline=True,
    # A line holding only a {% tag %} leaves nothing in the report, not even its newline.
    trim_blocks=True,
    lstrip_blocks=True,
)
_JINJA.filters["fmt"] = format


def _ratios(results: dict[str, Any], ours_level: str) -> dict[str, Any]:
    """Each comparison's ratio: paired per run where measured so, else of the medians."""
    over, latency = results["overhead"], results["extract_latency"]
    through, ours = results["extract_throughput"], over["classify"][ours_level]
    return {
        "overhead": {
            c: row.get("paired_ratio", row["rps"] / over["raw"][c]["rps"])
            for c, row in over["classify"].items()
        },
        "official": ours["rps"] / results["hf"]["official"]["rps"],
        "batched": ours["rps"] / results["hf"]["batched"]["rps"],
        "chunks": latency["13"].get("paired_ratio", latency["13"]["p50"] / latency["6"]["p50"]),
        "chunk_prompt_tokens": latency["13"]["prompt_tokens"]
        / max(latency["6"]["prompt_tokens"], 1.0),
        "prefix": through["on"]["rps"] / through["off"]["rps"] if through.get("off") else None,
    }


def _dtypes(dtypes: dict[str, Any] | None) -> dict[str, Any] | None:
    """Item 6's rows (the launcher's dtype first) and fp32 ÷ bf16 req/s by concurrency (None
    while only one side was measured)."""
    if not dtypes:
        return None
    chosen = dtypes["chosen"]
    sides = [chosen, *(d for d in ("float32", "bfloat16") if d != chosen and d in dtypes)]
    rows = [(dtype, c, row) for dtype in sides for c, row in dtypes[dtype].items()]
    both = "float32" in dtypes and "bfloat16" in dtypes
    ratio = (
        {c: row["rps"] / dtypes["bfloat16"][c]["rps"] for c, row in dtypes["float32"].items()}
        if both
        else None
    )
    return {"chosen": chosen, "rows": rows, "ratio": ratio}


def prefill_summary(prefill: dict[str, Any] | None) -> dict[str, Any] | None:
    """Item 7: each config's prompt tokens/s, GFLOP/s and share of the roof; the shipped
    config (compiled where measured, else the eager defaults), the best one, and the FLOPs of
    the defaults' mean prompt by part (None before item 7 existed)."""
    if not prefill:
        return None
    shape, roof = Shape(**prefill["shape"]), prefill["roof"]["gflop_per_s"]
    rows = []
    for row in prefill["configs"]:
        gflop = prefill_gflop(shape, row["prompt_tokens"])["total"]
        served = row["rps"] * gflop
        tokens = row["rps"] * row["prompt_tokens"]
        rows.append(
            {**row, "tokens_per_s": tokens, "gflop_per_s": served, "of_roof": served / roof}
        )
    by_name = {row["name"]: row for row in rows}
    shipped = by_name.get("compiled", rows[0])
    return {
        "roof": prefill["roof"],
        "roofs": prefill.get("roofs", [prefill["roof"]]),
        "shape": shape,
        "rows": rows,
        "shipped": shipped,
        "best": max(rows, key=lambda row: row["of_roof"]),
        "met": shipped["of_roof"] >= GOALS["prefill"],
        "per_token": 2 * shape.matrix_params / 1e9,
        "flop": prefill_gflop(shape, rows[0]["prompt_tokens"]),
    }


def _values(results: dict[str, Any], ours_level: str) -> dict[str, Any]:
    """Everything the template shows that is not in ``results`` as it stands."""
    meta, plan, scale = results["meta"], results["plan"], results["scale"]
    ratio, options = _ratios(results, ours_level), results.get("options")
    ours = results["overhead"]["classify"][ours_level]
    tokens_per_s = ours["rps"] * ours["prompt_tokens"]
    levels = sorted({*scale["classify"], *scale["extract"]}, key=int)
    return {
        "ours": ours,
        "ratio": ratio,
        "met": {
            "overhead": min(ratio["overhead"].values()) >= GOALS["overhead"],
            "official": ratio["official"] >= GOALS["official"],
            "chunks": ratio["chunks"] <= GOALS["chunks"],
            "scores": bool(options) and options["scores"]["paired_ratio"] >= GOALS["scores"],
        },
        "peak": {
            "clients": max(int(c) for c in scale["classify"]),
            **{kind: max(row["rps"] for row in rows.values()) for kind, rows in scale.items()},
        },
        "scale_rows": [(c, scale["classify"].get(c), scale["extract"].get(c)) for c in levels],
        "prompt_tokens_per_s": tokens_per_s,
        "gflop_per_s": tokens_per_s * GFLOP_PER_PROMPT_TOKEN,
        "quick": meta["size"] != "560m" or not plan["prefix_off_server"],
        "before": meta["before"],
        # Results written before a feature of the benchmark lack its facts: defaults, or None.
        "after": meta.get("after", meta["before"]),
        "elapsed_s": meta.get("elapsed_s", 0),
        "tokenizer": meta.get("tokenizer"),
        "eager": plan.get("enforce_eager", True),
        "reference_server": plan.get("reference_server"),
        "options": options,
        "windows": options.get("windows") if options else None,
        # Results from before the launcher chose the dtype: none of these.
        "cpu": meta.get("cpu"),
        "dtype_choice": meta.get("dtype_choice"),
        "servers": meta.get("servers"),
        "hf_dtype": meta.get("hf_dtype"),
        "dtypes": _dtypes(results.get("dtypes")),
        "prefill": prefill_summary(results.get("prefill")),
    }


def render(
    results: dict[str, Any],
    plots: dict[str, str],
    ours_level: str,
    apart: dict[str, Any] | None = None,
) -> str:
    """The whole report; ``plots`` links each plot by name, ``ours_level`` is the concurrency
    that stands for ours against the baselines; ``apart``: the figures of the programs that
    measure on their own (``report.APART``), each rendered where present."""
    template = _JINJA.get_template("BENCHMARKS.md.jinja")
    values = {**results, **_values(results, ours_level)}
    apart = {
        "api_cost": None,
        "schema": None,
        "scores": None,
        "prefill_profile": None,
        "tenants": None,
        **(apart or {}),
    }
    return template.render(values, plots=plots, ours_level=ours_level, goals=GOALS, apart=apart)
