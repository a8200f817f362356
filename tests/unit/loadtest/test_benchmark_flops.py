"""Item 7's arithmetic: a BLOOM prefill's FLOPs, the roof's shapes and the engine's threads."""

from __future__ import annotations

import pytest

from loadtest.benchmark.flops import Shape, prefill_gflop
from loadtest.benchmark.roof import engine_threads, layer_shapes

SEQGPT_560M = Shape(layers=24, hidden=1024, vocabulary=250_880)


def test_seqgpt_560m_costs_0_6_gflop_per_prompt_token_plus_attention_and_one_output_row() -> None:
    one = prefill_gflop(SEQGPT_560M, 1)
    assert SEQGPT_560M.matrix_params == 301_989_888  # 24 × 12 × 1024²
    assert one["matrices"] == pytest.approx(0.604, abs=1e-3)
    assert one["output"] == pytest.approx(2 * 1024 * 250_880 / 1e9)  # 0.514: once a prompt
    # Attention: position i reads i keys and i values, 2h FLOPs each, in every layer.
    assert one["attention"] == pytest.approx(4 * 1024 * 24 / 1e9)
    hundred = prefill_gflop(SEQGPT_560M, 100)
    assert hundred["attention"] == pytest.approx(4 * 1024 * 24 * sum(range(1, 101)) / 1e9)
    assert hundred["output"] == one["output"]
    assert hundred["total"] == pytest.approx(
        sum(hundred[k] for k in ("matrices", "attention", "output"))
    )


def test_shape_from_a_bloom_config() -> None:
    config = {"n_layer": 2, "hidden_size": 128, "vocab_size": 759, "n_head": 2}
    assert Shape.from_config(config) == Shape(2, 128, 759)


def test_layer_shapes_are_a_bloom_layers_gemms() -> None:
    shapes = layer_shapes(2048, 1024)
    assert shapes == [
        (2048, 1024, 3072),
        (2048, 1024, 1024),
        (2048, 1024, 4096),
        (2048, 4096, 1024),
    ]
    assert sum(k * n for _, k, n in shapes) == 12 * 1024 * 1024


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 2), (4, 4), (8, 7), (32, 31)])
def test_engine_threads_as_the_launcher_reserves_cores(cores: int, threads: int) -> None:
    assert engine_threads(cores) == threads
