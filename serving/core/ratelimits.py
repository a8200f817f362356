"""Per-tenant rate limits: token buckets, and OpenAI's rate-limit headers.

Each tenant with ``requests_per_minute`` or ``prompt_tokens_per_minute`` has one bucket per limit
in each API process. A bucket holds at most its per-minute amount and refills continuously
(Envoy's and OpenAI's model), so a tenant may burst its whole minute at once, then goes at the
limit's pace. With N API processes (``--api-server-count``) each process enforces 1/N of each
limit (its buckets' rate and size): the server as a whole never passes the limit, and a client
whose connections all land on one process sees that process's share (a limit below N per
minute then admits nothing: give it at least N).

- A request takes one request token, in the gate, right after its key and before its body is
  read: the cheapest refusal the server makes.
- Prompt tokens are known only after the work, so a request is refused while its tenant's token
  bucket is empty or in debt, and the real count is charged afterwards (``charge``), which may
  put the bucket in debt.

A refusal is a 429 with ``Retry-After`` (whole seconds until a token is there, rounded up), and
every answer to a limited tenant carries ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``
for the limits it has: the limit and what remains are this process's share, the reset is how long
until the bucket is full again, in OpenAI's format (``20ms``, ``1s``, ``6m0s``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from serving.core.tenants import Tenant

__all__ = ["Bucket", "Limiter", "TenantLimits", "duration", "over_limit_message"]


class Bucket:
    """A token bucket of ``capacity`` tokens refilled at ``capacity`` per minute."""

    def __init__(self, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._rate = capacity / 60.0  # tokens per second
        self._clock = clock
        self._level = capacity
        self._at = clock()

    def level(self) -> float:
        """The tokens in the bucket now (below zero: in debt)."""
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self._rate)
        self._at = now
        return self._level

    def wait_s(self, tokens: float = 1.0) -> float:
        """Seconds until ``tokens`` are in the bucket (0: they are now)."""
        missing = tokens - self.level()
        return max(0.0, missing / self._rate) if self._rate > 0 else math.inf

    def take(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` if they are there and return 0, else the seconds until they are."""
        wait = self.wait_s(tokens)
        if wait == 0:
            self._level -= tokens
        return wait

    def charge(self, tokens: float) -> None:
        """Take ``tokens`` whatever the level: what was spent is owed (the level may go below 0)."""
        self.level()
        self._level -= tokens

    def reset_s(self) -> float:
        """Seconds until the bucket is full."""
        return max(0.0, (self.capacity - self.level()) / self._rate) if self._rate > 0 else 0.0


def duration(seconds: float) -> str:
    """A duration in OpenAI's rate-limit header format: ``0s``, ``20ms``, ``1s``, ``6m0s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def over_limit_message(name: str, wait_s: float) -> tuple[str, int]:
    """The 429 sentence for tenant ``name``, and its ``Retry-After`` (whole seconds, 1 or more)."""
    seconds = max(1, math.ceil(wait_s))
    return f"Tenant {name!r} is over its rate limit; retry after {seconds} s.", seconds


@dataclass
class TenantLimits:
    """One tenant's buckets in this process (None: no such limit)."""

    requests: Bucket | None
    tokens: Bucket | None

    def admit(self) -> float:
        """Take a request token and check the prompt tokens: 0 if admitted, else the seconds
        to wait (nothing is taken from a bucket for a refused request)."""
        if self.tokens is not None:
            wait = self.tokens.wait_s(1.0)  # empty or in debt: refuse
            if wait > 0:
                return wait
        return self.requests.take() if self.requests is not None else 0.0

    def charge(self, prompt_tokens: int) -> None:
        """Charge the prompt tokens the request's work used."""
        if self.tokens is not None and prompt_tokens > 0:
            self.tokens.charge(prompt_tokens)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """OpenAI's rate-limit headers for the limits the tenant has."""
        found: list[tuple[bytes, bytes]] = []
        for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            if bucket is None:
                continue
            values = {
                "limit": str(math.floor(bucket.capacity)),
                "remaining": str(max(0, math.floor(bucket.level()))),
                "reset": duration(bucket.reset_s()),
            }
            found += [(f"x-ratelimit-{k}-{kind}".encode(), v.encode()) for k, v in values.items()]
        return found


class Limiter:
    """Every tenant's buckets in this process; a tenant whose limits change gets new ones."""

    def __init__(self, processes: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self._processes = max(1, processes)
        self._clock = clock
        self._limits: dict[str, tuple[tuple[int | None, int | None], TenantLimits]] = {}

    def of(self, tenant: Tenant) -> TenantLimits | None:
        """The tenant's buckets, None when it has no limit."""
        if not tenant.limited:
            return None
        wanted = (tenant.requests_per_minute, tenant.prompt_tokens_per_minute)
        known = self._limits.get(tenant.name)
        if known is not None and known[0] == wanted:
            return known[1]
        limits = TenantLimits(self._bucket(wanted[0]), self._bucket(wanted[1]))
        self._limits[tenant.name] = (wanted, limits)
        return limits

    def _bucket(self, per_minute: int | None) -> Bucket | None:
        return None if per_minute is None else Bucket(per_minute / self._processes, self._clock)
