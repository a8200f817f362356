"""The benchmark's plots, one per item (matplotlib, written as PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["draw_all"]


def _figure(columns: int) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, columns, figsize=(5.2 * columns, 3.8), squeeze=False)
    return figure, axes[0]


def _save(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(axis: Any, names: list[str], values: list[float], title: str, unit: str) -> None:
    bars = axis.bar(names, values, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][: len(names)])
    axis.bar_label(bars, fmt="%.2f")
    axis.set_title(title)
    axis.set_ylabel(unit)
    axis.margins(y=0.15)


def overhead(results: dict[str, Any], path: Path) -> None:
    """Requests/s and p95 of /v1/classify and raw /v1/completions per concurrency."""
    figure, (left, right) = _figure(2)
    levels = list(results["overhead"]["classify"])
    width = 0.38
    for offset, side, label in (
        (-width / 2, "classify", "/v1/classify"),
        (width / 2, "raw", "raw /v1/completions"),
    ):
        positions = [i + offset for i in range(len(levels))]
        rows = [results["overhead"][side][c] for c in levels]
        left.bar(positions, [r["rps"] for r in rows], width, label=label)
        right.bar(positions, [r["p95"] for r in rows], width, label=label)
    for axis, title, unit in ((left, "throughput", "requests/s"), (right, "p95 latency", "s")):
        axis.set_xticks(range(len(levels)), [f"c={c}" for c in levels])
        axis.set_title(f"1. classify: ours vs by hand, {title}")
        axis.set_ylabel(unit)
        axis.legend()
    _save(figure, path)


def baselines(results: dict[str, Any], path: Path, ours_level: str) -> None:
    """Requests/s of the Hugging Face ways and of our server."""
    figure, (axis,) = _figure(1)
    names = [
        "HF official\nbeam 4, 1 at a time",
        "HF greedy\nbatched",
        f"seqgpt-serve\nc={ours_level}",
    ]
    values = [
        results["hf"]["official"]["rps"],
        results["hf"]["batched"]["rps"],
        results["overhead"]["classify"][ours_level]["rps"],
    ]
    _bars(axis, names, values, "2. classification throughput", "requests/s")
    _save(figure, path)


def extraction(results: dict[str, Any], path: Path) -> None:
    """Latency of 6 vs 13 labels, and throughput with prefix caching on and off."""
    figure, (left, right) = _figure(2)
    latency = results["extract_latency"]
    names = ["6 labels\n1 prompt", "13 labels\n3 prompts"]
    values = [latency["6"]["p50"], latency["13"]["p50"]]
    _bars(left, names, values, "3a. extraction latency, concurrency 1 (p50)", "s")
    throughput = results["extract_throughput"]
    names, values = ["prefix cache on"], [throughput["on"]["rps"]]
    if throughput.get("off"):
        names.append("prefix cache off")
        values.append(throughput["off"]["rps"])
    _bars(right, names, values, "3b. 13-label extraction throughput", "requests/s")
    _save(figure, path)


def scale(results: dict[str, Any], path: Path) -> None:
    """Requests/s and p95 latency against concurrency, classify and extract."""
    figure, (left, right) = _figure(2)
    for kind in ("classify", "extract"):
        rows = results["scale"][kind]
        levels = [int(c) for c in rows]
        left.plot(levels, [rows[c]["rps"] for c in rows], marker="o", label=f"/v1/{kind}")
        right.plot(levels, [rows[c]["p95"] for c in rows], marker="o", label=f"/v1/{kind}")
    for axis, title, unit in ((left, "throughput", "requests/s"), (right, "p95 latency", "s")):
        axis.set_xscale("log", base=2)
        ticks = sorted({int(c) for rows in results["scale"].values() for c in rows})
        axis.set_xticks(ticks, [str(c) for c in ticks])
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel(unit)
        axis.set_title(f"4. {title} as concurrency grows")
        axis.grid(True, alpha=0.3)
        axis.legend()
    _save(figure, path)


def options(results: dict[str, Any], path: Path) -> None:
    """Item 5's ratios: each option against its plain way (1 = the same)."""
    from matplotlib.ticker import ScalarFormatter

    figure, (axis,) = _figure(1)
    figure.set_size_inches(10.4, 3.8)
    found = results["options"]
    ratios = {
        "5a batch\nclassify": found["batch"]["classify"]["paired_ratio"],
        "5a batch\nextract": found["batch"]["extract"]["paired_ratio"],
        "5b scores\nreq/s": found["scores"]["paired_ratio"],
        "5c reference\nclassify": found["reference"]["classify"]["paired_ratio"],
        "5c reference\nextract": found["reference"]["extract"]["paired_ratio"],
    }
    if found.get("windows"):
        ratios["5d whole doc.\n÷ windows"] = found["windows"]["paired_ratio"]
    bars = axis.bar(list(ratios), list(ratios.values()), color="#4c72b0")
    axis.bar_label(bars, fmt="%.2f×")
    axis.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(ScalarFormatter())
    axis.yaxis.set_minor_formatter(ScalarFormatter())
    axis.set_title("5. each option ÷ its plain way (5a, 5b: throughput; 5c, 5d: latency)")
    axis.set_ylabel("ratio (log scale)")
    axis.margins(y=0.15)
    _save(figure, path)


def prefill(results: dict[str, Any], path: Path) -> None:
    """Item 7: each config's prefill as a share of the matmul roof, its prompt tokens/s on top."""
    from loadtest.benchmark.report_text import GOALS, prefill_summary

    summary = prefill_summary(results["prefill"])
    if summary is None:  # drawn only when item 7 was measured
        return
    roof, rows = summary["roof"], summary["rows"]
    figure, (axis,) = _figure(1)
    figure.set_size_inches(10.4, 3.8)
    shares = [100 * row["of_roof"] for row in rows]
    bars = axis.bar([row["name"] for row in rows], shares, color="#4c72b0")
    labels = [f"{row['of_roof']:.0%}\n{row['tokens_per_s']:,.0f} tok/s" for row in rows]
    axis.bar_label(bars, labels=labels, fontsize=8)
    goal = 100 * GOALS["prefill"]
    axis.axhline(goal, color="grey", linestyle="--", linewidth=1, label=f"goal: {goal:.0f} %")
    axis.set_title(
        f"7. prefill ÷ matmul roof ({roof['gflop_per_s']:.1f} GFLOP/s, {roof['dtype']}, "
        f"{roof['threads']} threads, {roof['capability']})"
    )
    axis.set_ylabel("% of the roof")
    axis.margins(y=0.25)
    axis.legend(loc="lower right")
    _save(figure, path)


def draw_all(results: dict[str, Any], folder: Path, ours_level: str) -> dict[str, Path]:
    """Draw every plot into ``folder``; their paths by name (items 5's and 7's when measured)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["overhead", "baselines", "extraction", "scale"]
    names += ["options"] if results.get("options") else []
    names += ["prefill"] if results.get("prefill") else []
    paths = {name: folder / f"{name}.png" for name in names}
    overhead(results, paths["overhead"])
    baselines(results, paths["baselines"], ours_level)
    extraction(results, paths["extraction"])
    scale(results, paths["scale"])
    if "options" in paths:
        options(results, paths["options"])
    if "prefill" in paths:
        prefill(results, paths["prefill"])
    return paths
