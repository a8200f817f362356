"""How the test suite serves the tiny checkpoint, and how long it waits for it.

Dtype: every test server and in-process engine serves the tiny checkpoint in fp32
(``tiny_server``, ``DTYPE_FLAGS``). The checkpoint is stored in bf16, vLLM's CPU default, but
bf16 is fast only where the CPU has it (AVX-512 bf16 / AMX): on an AVX2-only CI machine torch's
bf16 matmul runs ~30x slower than fp32. fp32 is fast everywhere, the same on every machine, and
what the parity tests compare against (transformers in fp32); widening bf16 to fp32 is exact and
vLLM logs it per tensor only at debug level. The product's own default, the dtype the launcher
picks for the CPU (``serving.core.cpu``), is what benchmarks and ``make serve`` serve; the
launcher's healthy e2e server (``tests/e2e/test_launcher.py``) is started without ``--dtype``
to check it.

Pace: the time limits of the e2e, UI and deploy tiers were sized on a quiet AVX-512 machine.
``measure_pace`` times a small classification on a running server and says how many times slower
this machine serves (1.0 at least); limits that depend on serving speed are multiplied by it, so a
slow or busy machine gets more time while a hang or a wrong answer still fails. Pace sizes
limits only, never a load: a test that needs work in flight when something happens (a client
leaves, the server is told to stop) holds it there by construction, with ``paused_engine``: the
engine core process is stopped (SIGSTOP), so every request sent meanwhile stays in flight however
fast the machine, until the test resumes it.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from loadtest.server import ServerProcess

__all__ = [
    "DTYPE",
    "DTYPE_FLAGS",
    "REFERENCE_CLASSIFY_S",
    "Pace",
    "engine_core",
    "engine_counts",
    "measure_pace",
    "paused_engine",
    "tiny_server",
]

DTYPE = "float32"
DTYPE_FLAGS = ("--dtype", DTYPE)
# One small classification through a warm server on the tiny fp32 model, on the AVX-512 machine
# the limits were sized on: 25-30 ms (median of 5), rounded up so that its own noise stays 1.0x.
REFERENCE_CLASSIFY_S = 0.04
_PACE_BODY = {"text": "今天上证指数收涨1.2%，券商板块领涨。", "labels": ["财经", "体育", "娱乐"]}


def tiny_server(model: Path, **options: Any) -> ServerProcess:
    """A ``ServerProcess`` serving ``model`` (the tiny checkpoint) as the test suite does."""
    return ServerProcess(model, dtype=DTYPE, **options)


class Pace:
    """How many times slower than the reference machine this one serves (at least 1.0)."""

    def __init__(self, factor: float) -> None:
        self.factor = max(1.0, factor)

    def __call__(self, seconds: float) -> float:
        """``seconds`` on the reference machine, here."""
        return seconds * self.factor

    def __repr__(self) -> str:
        return f"Pace({self.factor:.2f}x)"


def measure_pace(url: str, headers: dict[str, str] | None = None, repeats: int = 5) -> Pace:
    """Time a small classification on the server at ``url``, after one that warms it up."""
    times = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for attempt in range(repeats + 1):
            started = time.perf_counter()
            client.post("/v1/classify", json=_PACE_BODY).raise_for_status()
            if attempt:
                times.append(time.perf_counter() - started)
    return Pace(statistics.median(times) / REFERENCE_CLASSIFY_S)


def engine_counts(http: httpx.Client) -> dict[str, float]:
    """Requests running and waiting in the engine, requests it ran to their end (a stop or the
    length budget), and tokens it generated."""
    names = {
        "vllm:num_requests_running": "running",
        "vllm:num_requests_waiting": "waiting",
        "vllm:request_success_total": "finished",
        "vllm:generation_tokens_total": "generated",
    }
    counts = dict.fromkeys(names.values(), 0.0)
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            # "finished" counts only requests that ran to their end (an earlier test's abort
            # may be counted late under "abort" on a loaded machine).
            ran_out = sample.labels.get("finished_reason", "stop") in ("stop", "length")
            if sample.name in names and ran_out:
                counts[names[sample.name]] += sample.value
    return counts


def engine_core(server: ServerProcess) -> int:
    """The process id of ``server``'s engine core (vLLM's process title, ``VLLM::EngineCore``)."""
    cores = [
        pid
        for pid in server.processes()
        if b"EngineCore" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    ]
    assert len(cores) == 1, f"not one engine core among {server.processes()}: {cores}"
    return cores[0]


@contextmanager
def paused_engine(server: ServerProcess) -> Iterator[None]:
    """Hold ``server``'s engine still (SIGSTOP) for the block, then let it go on (SIGCONT).

    While it is held the API processes still answer what needs no engine step (``/metrics``,
    ``/v1/status``, refusals), and every request that needs one stays in flight: a test can act
    while work is surely running, whatever the machine's speed. Its last reported counts
    (``engine_counts``) are those from before the hold."""
    pid = engine_core(server)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
