"""Parallel engines on vLLM's CPU backend: refused in one line where vLLM would crash late.

vLLM's CPU workers bind their OpenMP threads to cores. By default (``VLLM_CPU_OMP_THREADS_BIND``
unset or ``auto``) each worker of each data-parallel rank gets a NUMA node of its own
(``vllm/utils/ompmultiprocessing.py``), and with fewer NUMA nodes than workers the engine fails
only after minutes of start-up, with a 40-line traceback ("Not enough allowed NUMA nodes to bind
threads of 2 local CPUWorkers", seen with ``--tensor-parallel-size 2`` on a one-node machine:
273 s, exit status 1). Checked here before the engine starts instead; a binding given by hand
(``VLLM_CPU_OMP_THREADS_BIND=0|1``: one list of cores per worker, ``|`` between them) or
``nobind`` is the user's choice and passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["numa_nodes", "parallel_problem"]

_NODES = Path("/sys/devices/system/node")
_AUTO = {"", "auto"}


def numa_nodes(root: Path = _NODES) -> int:
    """The machine's NUMA nodes (1 where the kernel does not list them)."""
    found = [p for p in root.glob("node*") if re.fullmatch(r"node\d+", p.name)]
    return max(1, len(found))


def parallel_problem(
    tensor: int, pipeline: int, data: int, environ: Mapping[str, str], nodes: int
) -> str | None:
    """One line saying why vLLM's CPU backend cannot start ``data`` engines of ``tensor`` x
    ``pipeline`` workers with this environment on ``nodes`` NUMA nodes, or None."""
    workers = tensor * pipeline * data
    binding = environ.get("VLLM_CPU_OMP_THREADS_BIND", "auto").strip()
    if workers <= nodes or binding not in _AUTO or environ.get("VLLM_CPU_SIM_MULTI_NUMA"):
        return None
    flags = [
        f"{flag} {size}"
        for flag, size in (
            ("--tensor-parallel-size", tensor),
            ("--pipeline-parallel-size", pipeline),
            ("--data-parallel-size", data),
        )
        if size > 1
    ]
    example = "|".join(str(core) for core in range(workers))
    return (
        f"error: {' '.join(flags)} on vLLM's CPU backend binds each of its {workers} workers to "
        f"a NUMA node of its own, and this machine has {nodes}: give each worker its cores with "
        f"VLLM_CPU_OMP_THREADS_BIND (e.g. '{example}', see docs/running.md), or drop the flag"
    )
