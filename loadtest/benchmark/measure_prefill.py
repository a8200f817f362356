"""The benchmark's item 7: the server's prefill against this machine's matrix-multiply roof.

First the roof (``roof.matmul_roof``): torch's GEMM rate in the dtype the launcher picks for
this CPU, with the threads the engine binds, on the shapes of one layer of the model at
``plan.roof_tokens`` rows, while no server runs. Then a sweep over what the launcher may choose
on vLLM's CPU backend, one factor at a time from its defaults (``CONFIGS``), each config on a
server of its own, after every other item: ``plan.prefill_requests`` plain classifications of
long-ish texts (corpus texts of one language joined to at least ``plan.prefill_text_tokens``
tokens, so prefill dominates; the service's usual label budget) at ``plan.prefill_concurrency``
clients. The sweep's servers are eager (``--enforce-eager``), as compiling the 560M shape takes
a minute or two a server; one ``compiled`` config measures what compiling changes. Every config
reads the same texts (fresh tags). The config the main server runs (``compiled``, or
``defaults`` in a ``--quick`` run's eager one) is measured on it, after its other items: one
start-up fewer. The report turns requests/s into GFLOP/s (``flops``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from loadtest.benchmark.flops import Shape
from loadtest.benchmark.measure import Bench, warm_up
from loadtest.benchmark.roof import engine_threads, matmul_roof
from loadtest.corpus import Entry
from serving.core.cpu import choose_dtype, cpu_facts

__all__ = ["CONFIGS", "PrefillSweep", "SweepConfig", "long_entries"]


@dataclass(frozen=True)
class SweepConfig:
    """One server configuration of the sweep: flags and environment on top of the launcher's."""

    change: str
    """What differs from the launcher's defaults, for people."""
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    eager: bool = True


# One factor at a time from the launcher's CPU defaults (block size 32, vLLM's CPU defaults of
# 2048 batched tokens and chunked prefill, OpenMP threads bound by vLLM, compiled), all eager
# but "compiled". VLLM_CPU_OMP_THREADS_BIND takes auto, nobind or explicit core lists; a list of
# every core is what auto binds on a machine whose launcher reserves none (4 cores or fewer).
CONFIGS = {
    "defaults": SweepConfig("none (the launcher's defaults, eager)"),
    "batched-512": SweepConfig(
        "`--max-num-batched-tokens 512`", ("--max-num-batched-tokens", "512")
    ),
    "batched-8192": SweepConfig(
        "`--max-num-batched-tokens 8192`", ("--max-num-batched-tokens", "8192")
    ),
    "block-64": SweepConfig("`--block-size 64`", ("--block-size", "64")),
    "block-128": SweepConfig("`--block-size 128` (vLLM's CPU default)", ("--block-size", "128")),
    "no-chunked-prefill": SweepConfig(
        "`--no-enable-chunked-prefill`", ("--no-enable-chunked-prefill",)
    ),
    "nobind": SweepConfig(
        "`VLLM_CPU_OMP_THREADS_BIND=nobind`", env={"VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    ),
    "compiled": SweepConfig("compiled (no `--enforce-eager`), as `make serve` runs", eager=False),
    "compiled-batched-512": SweepConfig(
        "compiled, `--max-num-batched-tokens 512`",
        ("--max-num-batched-tokens", "512"),
        eager=False,
    ),
}


def long_entries(bench: Bench, n: int, tokens: int) -> list[Entry]:
    """``n`` entries, alternating Chinese and English, each the next corpus texts of its
    language joined until the text has ``tokens`` tokens, with the first text's labels."""
    joined = []
    for i in range(n):
        language = ("zh", "en")[i % 2]
        separator = "" if language == "zh" else " "
        parts = bench.take_language(1, language)
        while bench.work.tokens(separator.join(e.text for e in parts)) < tokens:
            parts += bench.take_language(1, language)
        joined.append(replace(parts[0], text=separator.join(e.text for e in parts)))
    return joined


def _roof(bench: Bench, shape: Shape, when: str) -> dict[str, Any]:
    """The roof in the launcher's dtype for this CPU, with the engine's threads."""
    dtype = choose_dtype(cpu_facts()).dtype
    roof = matmul_roof(dtype, engine_threads(), bench.plan.roof_tokens, shape.hidden)
    bench.log(
        f"7. roof {when}: {roof['gflop_per_s']:.1f} GFLOP/s ({dtype}, {roof['threads']} "
        f"threads, {roof['capability']}, {roof['tokens']} rows)"
    )
    return roof


class PrefillSweep:
    """Item 7 across the run: the roof before any server starts and again after the last one
    (a shared machine's load moves it: the higher is the roof), the config the main server
    runs measured on it, every other config on a server of its own."""

    def __init__(self, bench: Bench, model: Path) -> None:
        """Measure the roof (no server may run yet) and draw the sweep's texts."""
        self.bench, self.model = bench, model
        config = json.loads((model / "config.json").read_text(encoding="utf-8"))
        self.shape = Shape.from_config(config)
        self.roofs = [_roof(bench, self.shape, "before the servers")]
        plan = bench.plan
        self.entries = long_entries(bench, plan.prefill_requests, plan.prefill_text_tokens)
        self.rows: dict[str, dict[str, Any]] = {}

    def on_main(self, url: str, server_name: str) -> None:
        """Measure the main server's config (``compiled``, or ``defaults`` where the plan
        runs eager servers) on it, at ``url``, if the plan sweeps it."""
        name = "defaults" if self.bench.plan.enforce_eager else "compiled"
        if name in self.bench.plan.prefill_configs:
            began = time.monotonic()
            cell = self._cell(url, name)
            self.rows[name] = self._row(name, cell, server_name, began, None)

    def on_own_servers(self) -> None:
        """Every config of the plan not yet measured, each on a server of its own."""
        bench = self.bench
        for name in bench.plan.prefill_configs:
            if name in self.rows:
                continue
            sweep, began = CONFIGS[name], time.monotonic()
            with bench.server(
                self.model,
                f"prefill-{name}",
                *sweep.flags,
                env=sweep.env,
                enforce_eager=sweep.eager,
            ) as server:
                started = time.monotonic()
                warm_up(bench, server.url, classify_only=True)
                cell = self._cell(server.url, name)
            self.rows[name] = self._row(name, cell, f"prefill-{name}", began, started)

    def result(self) -> dict[str, Any]:
        """Measure the roof again (no server may run) and return ``{"roof": the higher,
        "roofs": both, "shape", "configs": [row per config, in the plan's order]}``."""
        self.roofs.append(_roof(self.bench, self.shape, "after the servers"))
        rows = [self.rows[name] for name in self.bench.plan.prefill_configs if name in self.rows]
        return {
            "roof": max(self.roofs, key=lambda roof: roof["gflop_per_s"]),
            "roofs": self.roofs,
            "shape": asdict(self.shape),
            "configs": rows,
        }

    def _cell(self, url: str, name: str) -> dict[str, Any]:
        bodies = self.bench.work.classify(self.entries)
        concurrency = self.bench.plan.prefill_concurrency
        return self.bench.cell(url, "classify", bodies, concurrency, f"7. prefill {name}")

    def _row(
        self, name: str, cell: dict[str, Any], server: str, began: float, started: float | None
    ) -> dict[str, Any]:
        """The cell with the config, its server's dtype and start-up seconds (None: the main
        server, started for other items) and the config's total seconds."""
        return {
            **cell,
            "name": name,
            **asdict(CONFIGS[name]),
            "server": server,
            "dtype": self.bench.servers[server]["dtype"],
            "start_s": None if started is None else started - began,
            "total_s": time.monotonic() - began,
        }
