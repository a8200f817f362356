"""When a call is sent again: what the server says is passing, within a bound of count and time.

A 429 (the server's in-flight bound is full) and a 503 (vLLM's queue is full, the engine is
restarting, the server is draining) say "not now": the call is sent again after the answer's
``Retry-After`` (seconds, or an HTTP date), else after an exponential backoff with jitter
(0.5 s, 1 s, 2 s … up to 15 s, each times a random 0.5-1). It stops at ``max_retries`` retries or
when the next wait would end past ``max_seconds`` after the first send, whichever comes first;
the last answer is then the call's answer (its error raised). Connection failures and timeouts
are retried only when ``transport_errors`` is set (the batch CLI sets it: a pod restarting
refuses connections for a while). Every task call is free of side effects, so a retry is safe.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import httpx

__all__ = ["RETRY_STATUSES", "RetryPolicy", "retry_after"]

RETRY_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})


@dataclass(frozen=True)
class RetryPolicy:
    """Which answers are retried, how long to wait before each retry, and when to stop."""

    max_retries: int | None = 2
    """Retries after the first send; ``None``: no bound on the count (``max_seconds`` stays)."""
    max_seconds: float = 60.0
    """No retry whose wait would end later than this after the first send."""
    statuses: frozenset[int] = field(default=RETRY_STATUSES)
    """Statuses that mean "not now"."""
    transport_errors: bool = False
    """Also retry a call that got no answer (refused or broken connection, timeout)."""
    first_backoff_s: float = 0.5
    max_backoff_s: float = 15.0

    def wait(self, retries: int, elapsed: float, server_says: float | None) -> float | None:
        """Seconds to wait before retry ``retries + 1``, or ``None``: stop, the last answer holds.

        ``elapsed``: seconds since the first send; ``server_says``: the answer's ``Retry-After``.
        """
        if self.max_retries is not None and retries >= self.max_retries:
            return None
        delay = server_says if server_says is not None else self.backoff(retries)
        return None if elapsed + delay > self.max_seconds else delay

    def backoff(self, retries: int) -> float:
        """The wait when the server names none: exponential, capped, with jitter."""
        bound = min(self.max_backoff_s, self.first_backoff_s * 2.0**retries)
        return bound * random.uniform(0.5, 1)  # jitter, not a secret


def retry_after(response: httpx.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds (delay-seconds or an HTTP date), else ``None``."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
