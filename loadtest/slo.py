"""SLO gates: a run fails when any endpoint's failure ratio or p95 latency is over its threshold.

Pure functions over (name, requests, failures, p95) rows so they can be tested without locust;
``locustfile.py`` feeds them ``environment.stats`` when locust quits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["EndpointStats", "Thresholds", "breaches", "parse_overrides"]


@dataclass(frozen=True)
class EndpointStats:
    """What the gates read from one row of locust's statistics."""

    name: str
    requests: int
    failures: int
    p95_ms: float

    @property
    def failure_ratio(self) -> float:
        """Failures over requests (locust counts a failed request in both)."""
        if not self.requests:
            return 1.0 if self.failures else 0.0
        return self.failures / self.requests


@dataclass(frozen=True)
class Thresholds:
    """Gate limits; a p95 limit of 0 (or absent) means no latency gate."""

    max_failure_ratio: float = 0.0
    p95_ms: float = 0.0
    p95_ms_by_name: dict[str, float] = field(default_factory=dict)

    def p95_limit(self, name: str) -> float:
        """The p95 limit for an endpoint: its own override, else the global one."""
        return self.p95_ms_by_name.get(name, self.p95_ms)


def parse_overrides(text: str) -> dict[str, float]:
    """Parse ``"/v1/extract=8000, completions stream TTFT=500"`` into per-name p95 limits."""
    limits: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.rpartition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME=MILLISECONDS, got {item!r}")
        limits[name.strip()] = float(value)
    return limits


def breaches(rows: Iterable[EndpointStats], limits: Thresholds) -> list[str]:
    """One line per broken gate; empty when every endpoint is within its limits."""
    found: list[str] = []
    rows = list(rows)
    if not any(r.requests for r in rows):
        return ["no requests were made"]
    for row in rows:
        if row.failure_ratio > limits.max_failure_ratio:
            found.append(
                f"{row.name}: failure ratio {row.failure_ratio:.3f} > {limits.max_failure_ratio}"
            )
        p95_limit = limits.p95_limit(row.name)
        if p95_limit and row.requests and row.p95_ms > p95_limit:
            found.append(f"{row.name}: p95 {row.p95_ms:.0f} ms > {p95_limit:.0f} ms")
    return found
