"""The benchmark's item 6: plain classification in bf16 against fp32, on this machine's CPU.

Each dtype runs on an eager server of its own, after every other server: the launcher's choice
for this CPU first (started without ``--dtype``), then the other one (``--dtype``). Eager, because
compiled, vLLM's start-up warm-up runs a full batch through the model, which in bf16 on a CPU
without native bf16 took more than the 4 minutes a server gets to start (AVX2, 2 cores); both
sides alike, so the ratio is the dtype's alone. Both get the same corpus texts (fresh tags) at
the same concurrencies, ``plan.dtype_levels``; one server at a time, as every item, so the two
sides run minutes apart rather than alternating. A ``--quick`` run measures the launcher's choice
on its one server only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.benchmark.driver import median_of
from loadtest.benchmark.measure import Bench, warm_up

__all__ = ["OTHER_DTYPE", "measure_dtypes"]

OTHER_DTYPE = {"bfloat16": "float32", "float32": "bfloat16"}

Reserved = dict[tuple[int, int], list[Any]]


def _reserve(bench: Bench) -> Reserved:
    """The texts of every (repeat, concurrency), the same for both dtypes."""
    plan = bench.plan
    return {
        (repeat, c): bench.take(plan.dtype_requests_at(c))
        for repeat in range(plan.repeats)
        for c in plan.dtype_levels
    }


def _measure(bench: Bench, url: str, dtype: str, reserved: Reserved) -> dict[str, Any]:
    """Plain ``/v1/classify`` at each of ``plan.dtype_levels`` on the server at ``url`` (serving
    ``dtype``); medians over runs by concurrency."""
    runs: dict[str, list[dict[str, float]]] = {}
    for repeat in range(bench.plan.repeats):
        for c in bench.plan.dtype_levels:
            bodies = bench.work.classify(reserved[(repeat, c)])
            label = f"6. classify {dtype} #{repeat + 1}"
            runs.setdefault(str(c), []).append(bench.cell(url, "classify", bodies, c, label))
    return {c: median_of(cells) for c, cells in runs.items()}


def measure_dtypes(bench: Bench, model: Path, on: str | None = None) -> dict[str, Any]:
    """Item 6: ``{"chosen": the launcher's dtype, dtype: {concurrency: row}}`` for both dtypes,
    each on its own server; only the launcher's, on the running server at ``on``, if given."""
    chosen = bench.servers["prefix-on"]["dtype"]
    reserved = _reserve(bench)
    result: dict[str, Any] = {"chosen": chosen}
    if on is not None:
        result[chosen] = _measure(bench, on, chosen, reserved)
        return result
    for dtype in (chosen, OTHER_DTYPE[chosen]):
        given = () if dtype == chosen else ("--dtype", dtype)
        with bench.server(model, f"dtype-{dtype}", *given, enforce_eager=True) as server:
            served = bench.servers[f"dtype-{dtype}"]["dtype"]
            assert served == dtype, f"the dtype-{dtype} server serves {served}"
            warm_up(bench, server.url, classify_only=True)
            result[dtype] = _measure(bench, server.url, dtype, reserved)
    return result
