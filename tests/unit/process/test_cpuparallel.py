"""Parallel workers on vLLM's CPU backend: which the default thread binding cannot place."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.process.cpuparallel import numa_nodes, parallel_problem


@pytest.mark.parametrize(
    ("sizes", "nodes"),
    [((1, 1, 1), 1), ((2, 1, 1), 2), ((1, 2, 1), 2), ((2, 1, 2), 4)],
)
def test_as_many_numa_nodes_as_workers_pass(sizes: tuple[int, int, int], nodes: int) -> None:
    assert parallel_problem(*sizes, {}, nodes) is None


@pytest.mark.parametrize(
    ("sizes", "flags", "workers"),
    [
        ((2, 1, 1), "--tensor-parallel-size 2", 2),
        ((1, 1, 2), "--data-parallel-size 2", 2),
        ((2, 2, 1), "--tensor-parallel-size 2 --pipeline-parallel-size 2", 4),
    ],
)
def test_more_workers_than_numa_nodes_are_one_line(
    sizes: tuple[int, int, int], flags: str, workers: int
) -> None:
    problem = parallel_problem(*sizes, {"VLLM_CPU_OMP_THREADS_BIND": "auto"}, 1)
    assert problem is not None
    assert problem.startswith(f"error: {flags} on vLLM's CPU backend binds each of its {workers}")
    assert "this machine has 1:" in problem
    assert "\n" not in problem


@pytest.mark.parametrize(
    "environ",
    [
        {"VLLM_CPU_OMP_THREADS_BIND": "0|1"},
        {"VLLM_CPU_OMP_THREADS_BIND": "nobind"},
        {"VLLM_CPU_SIM_MULTI_NUMA": "1"},
    ],
)
def test_a_binding_given_by_hand_is_the_users_choice(environ: dict[str, str]) -> None:
    assert parallel_problem(2, 1, 1, environ, 1) is None


def test_numa_nodes_are_counted_from_sysfs(tmp_path: Path) -> None:
    assert numa_nodes(tmp_path) == 1  # none listed: one
    for name in ("node0", "node1", "nodes", "possible"):
        (tmp_path / name).mkdir()
    assert numa_nodes(tmp_path) == 2
    assert numa_nodes() >= 1
