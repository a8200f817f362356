"""The machine's matrix-multiply roof, measured with torch in the same run as the servers.

A server's prefill is bounded by how fast this CPU multiplies matrices in the dtype it serves,
with the threads its engine runs: SeqGPT's prefill is almost all the four GEMMs of each BLOOM
layer (query-key-value, attention output, the MLP's two), with M the tokens of an engine step.
``matmul_roof`` times exactly those shapes (``torch.mm`` on random matrices, after one warm-up),
the median of ``repeats`` timings per shape; the roof is their FLOP-weighted rate, as a layer
runs them. ``engine_threads`` is the count vLLM's CPU worker binds its OpenMP threads to.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from serving.process.launcher import SMALL_MACHINE_CORES

__all__ = ["engine_threads", "layer_shapes", "matmul_roof"]


def engine_threads(cores: int | None = None) -> int:
    """The OpenMP threads of the engine's one CPU worker on ``cores`` usable cores (default:
    this process's affinity): every core on a small machine, where the launcher reserves none
    for vLLM's scheduler (VLLM_CPU_NUM_OF_RESERVED_CPU=0), all but the one vLLM reserves on a
    bigger one. vLLM binds one thread per physical core: with SMT this counts logical CPUs."""
    cores = cores or len(os.sched_getaffinity(0))
    return cores if cores <= SMALL_MACHINE_CORES else cores - 1


def layer_shapes(tokens: int, hidden: int) -> list[tuple[int, int, int]]:
    """(M, K, N) of a BLOOM layer's GEMMs for ``tokens`` rows: QKV, output, MLP up, MLP down."""
    return [
        (tokens, hidden, 3 * hidden),
        (tokens, hidden, hidden),
        (tokens, hidden, 4 * hidden),
        (tokens, 4 * hidden, hidden),
    ]


def _seconds(a: Any, b: Any, repeats: int) -> float:
    import torch

    torch.mm(a, b)  # warm-up: first-call allocation and kernel selection
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        torch.mm(a, b)
        timings.append(time.perf_counter() - began)
    return statistics.median(timings)


def matmul_roof(
    dtype: str, threads: int, tokens: int, hidden: int, repeats: int = 5
) -> dict[str, Any]:
    """GFLOP/s of ``torch.mm`` in ``dtype`` on ``threads`` threads for one layer's GEMMs of
    ``tokens`` rows: each shape's (median of ``repeats``) and the layer's (``gflop_per_s``)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        kind = getattr(torch, dtype)
        shapes, total_flop, total_s = [], 0.0, 0.0
        for m, k, n in layer_shapes(tokens, hidden):
            a, b = torch.randn(m, k, dtype=kind), torch.randn(k, n, dtype=kind)
            seconds = _seconds(a, b, repeats)
            flop = 2.0 * m * k * n
            total_flop, total_s = total_flop + flop, total_s + seconds
            shapes.append({"m": m, "k": k, "n": n, "gflop_per_s": flop / seconds / 1e9})
    finally:
        torch.set_num_threads(saved)
    return {
        "dtype": dtype,
        "threads": threads,
        "tokens": tokens,
        "hidden": hidden,
        "repeats": repeats,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "shapes": shapes,
        "gflop_per_s": total_flop / total_s / 1e9,
    }
