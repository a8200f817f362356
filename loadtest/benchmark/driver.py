"""A closed-loop load driver: ``concurrency`` clients send a list of requests as fast as answered.

Every response is checked like in the locust suite; a cell reports requests/s over its wall
time, latency percentiles and token counts, and ``median_of`` combines repeated runs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from loadtest.checks import CheckError

__all__ = ["Cell", "Sample", "median_of", "run_cell"]

Check = Callable[[Mapping[str, Any], Mapping[str, Any]], None]
TOKENS = ("prompt_tokens", "completion_tokens")


@dataclass(frozen=True)
class Sample:
    """One request: its latency and what it cost, or why it failed."""

    latency: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class Cell:
    """One measured run: ``n`` requests at a concurrency, on one endpoint."""

    elapsed: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> list[Sample]:
        """The requests that succeeded and passed their check."""
        return [s for s in self.samples if s.error is None]

    def summary(self) -> dict[str, float]:
        """requests/s, p50/p95 latency (s), mean tokens and error count of this run."""
        ok = self.ok
        latencies = [s.latency for s in ok] or [float("nan")]
        return {
            "rps": len(ok) / self.elapsed if self.elapsed else 0.0,
            "p50": float(np.percentile(latencies, 50)),
            "p95": float(np.percentile(latencies, 95)),
            "prompt_tokens": statistics.fmean(s.prompt_tokens for s in ok) if ok else 0.0,
            "completion_tokens": statistics.fmean(s.completion_tokens for s in ok) if ok else 0.0,
            "errors": float(len(self.samples) - len(ok)),
            "n": float(len(self.samples)),
        }


def median_of(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each metric's median over repeated runs (errors and n are summed)."""
    merged = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    merged["errors"] = sum(run["errors"] for run in runs)
    merged["n"] = sum(run["n"] for run in runs)
    merged["repeats"] = float(len(runs))
    return merged


async def _send(client: httpx.AsyncClient, path: str, body: Any, check: Check) -> Sample:
    began = time.perf_counter()
    try:
        response = await client.post(path, json=body)
        latency = time.perf_counter() - began
        if response.status_code != 200:
            return Sample(latency, error=f"HTTP {response.status_code}")
        answer = response.json()
        check(body, answer)
    except (httpx.HTTPError, CheckError, ValueError, KeyError, TypeError) as exc:
        return Sample(time.perf_counter() - began, error=f"{type(exc).__name__}: {exc}")
    # A batch answer has no usage of its own: its results' add up.
    usages = [item.get("usage") or {} for item in answer.get("results", [answer])]
    prompt, completion = (sum(u.get(key, 0) for u in usages) for key in TOKENS)
    return Sample(latency, prompt, completion)


async def _run(url: str, path: str, bodies: Sequence[Any], concurrency: int, check: Check) -> Cell:
    pending = iter(bodies)
    samples: list[Sample] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=900, limits=limits) as client:

        async def worker() -> None:
            # One shared iterator: each worker takes the next body when its last one is done.
            for body in pending:
                samples.append(await _send(client, path, body, check))

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Cell(elapsed, samples)


def run_cell(
    url: str, path: str, bodies: Sequence[Any], concurrency: int, check: Check
) -> dict[str, float]:
    """Send ``bodies`` to ``url + path`` with ``concurrency`` clients; the run's summary."""
    cell = asyncio.run(_run(url, path, bodies, concurrency, check))
    errors = [s.error for s in cell.samples if s.error]
    if errors:
        print(f"  {len(errors)} of {len(cell.samples)} requests failed, e.g. {errors[0]}")
    return cell.summary()
