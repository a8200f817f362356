"""How the prefill profile splits the model runner's samples into the parts of an engine step."""

from __future__ import annotations

import pytest

from loadtest.prefill_profile import parts

MAIN = "WorkerProc.worker_busy_loop (vllm/v1/executor/multiproc_executor.py:1041)"


def test_main_thread_samples_fall_in_the_first_part_their_stack_names() -> None:
    raw = "\n".join(
        [
            f"{MAIN};GPUModelRunner._model_forward (r.py:1);BloomForCausalLM.forward (b.py:350) 6",
            f"{MAIN};BloomForCausalLM.compute_logits (b.py:359) 1",
            f"{MAIN};MessageQueue.dequeue (s.py:971);MessageQueue.acquire_read (s.py:864) 2",
            f"{MAIN};GPUModelRunner._prepare_inputs (r.py:2144) 1",
            "Thread._bootstrap (threading.py:1002);TMonitor.run (tqdm/_monitor.py:69) 30",
        ]
    )
    shares = parts(raw)
    assert shares == pytest.approx(
        {
            "output layer": 0.1,
            "layers' forward": 0.6,
            "sampling": 0.0,
            "waiting for the next step": 0.2,
            "the rest of the runner": 0.1,
        }
    )
