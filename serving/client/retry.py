"""When a call is sent again, and how long after: never sooner than the server asks, never all at
once, and never more than a share of what the client sends.

A 429 (the server's in-flight bound is full) and a 503 (vLLM's queue is full, the engine is
restarting, the server is draining) say "not now". Before retry ``n`` (0 for the first) the
call waits, in seconds::

    max(Retry-After, min(15, 0.5 * 2**n)) * (1 + 0.5 * u)      u uniform in [0, 1)

- **A floor**: the backoff's first step (0.5 s) is the least wait. A ``Retry-After`` of 0, a
  negative one or a date already past would otherwise send the call again at once, and a few
  clients doing that against a struggling server sent thousands of requests a second.
- **Exponential backoff beyond the server's value**: the longer a call is refused, the longer it
  waits (0.5 s, 1 s, 2 s … up to 15 s), even if the server keeps saying ``Retry-After: 1``; a
  server's longer ``Retry-After`` is waited in full.
- **Jitter on every wait, the server's too**: up to half again, never less than asked. Clients
  refused together (a burst of 64 rows answered 503 at once) would otherwise come back together,
  every second, as one burst.

A call stops at ``max_retries`` retries or when the next wait would end past ``max_seconds``
after the first send, whichever comes first; the last answer is then the call's answer (its
error raised). Connection failures and timeouts are retried only when ``transport_errors`` is
set (the batch CLI sets it: a pod restarting refuses connections for a while). Every task call
is free of side effects, so a retry is safe.

**The retry budget** (``RetryBudget``, one per client, shared by all its calls and threads)
bounds what all calls retry together, as Finagle's ``RetryBudget`` and gRPC's retry throttling
do: each first send earns 0.2 of a retry, and 10 more are earned each second (so a quiet
client can still retry), banked up to 10. Retries are thus at most 20 % of first sends plus
10 a second, whatever the concurrency: a batch run of a million rows cannot become a retry
storm. A retry past the budget is not dropped but queued: it waits for the token it reserved
(counted in ``max_seconds``). This paces a batch run to what the server takes instead of
failing it, and a waiting call keeps its place in the caller's concurrency, so no first send
takes its turn either.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import httpx

__all__ = ["RETRY_STATUSES", "Attempts", "RetryBudget", "RetryPolicy", "retry_after"]

RETRY_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})
_MAX_DOUBLINGS = 64  # 2.0**1024 overflows; the cap is reached long before


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
    """The first retry's backoff, and so the least wait: a ``Retry-After`` below it counts as it."""
    max_backoff_s: float = 15.0
    """Where the doubling stops (a server's longer ``Retry-After`` is still waited in full)."""
    jitter: float = 0.5
    """Each wait is stretched by a random share of it up to this, so refused clients spread."""
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)
    """A uniform draw in [0, 1) for the jitter (a test passes a seeded or fixed one)."""

    def __post_init__(self) -> None:
        if not 0 < self.first_backoff_s <= self.max_backoff_s:
            raise ValueError("RetryPolicy needs 0 < first_backoff_s <= max_backoff_s")
        if self.jitter < 0:
            raise ValueError("RetryPolicy.jitter must not be negative")

    def wait(self, retries: int, elapsed: float, server_says: float | None) -> float | None:
        """Seconds to wait before retry ``retries + 1``, or ``None``: stop, the last answer holds.

        ``elapsed``: seconds since the first send; ``server_says``: the answer's ``Retry-After``.
        """
        if self.max_retries is not None and retries >= self.max_retries:
            return None
        delay = self.backoff(retries, server_says)
        return None if elapsed + delay > self.max_seconds else delay

    def backoff(self, retries: int, server_says: float | None = None) -> float:
        """The wait before retry ``retries + 1``: the larger of the server's value and the
        exponential backoff (so never below ``first_backoff_s``), stretched by the jitter."""
        doubling = self.first_backoff_s * 2.0 ** min(retries, _MAX_DOUBLINGS)
        base = max(server_says or 0.0, min(self.max_backoff_s, doubling))
        return base * (1.0 + self.jitter * self.rng())  # jitter, not a secret


class RetryBudget:
    """Retries as a share of first sends, for every call of a client: a token bucket.

    Each first send earns ``ratio`` of a token and each second ``per_second`` tokens, the
    balance capped at ``burst``; a retry takes one. When none is left the retry reserves the
    next one to come (the balance goes below zero) and waits for it.
    """

    def __init__(
        self,
        ratio: float = 0.2,
        per_second: float = 10.0,
        burst: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` (seconds, monotonic) is for tests."""
        if ratio < 0 or per_second < 0 or burst < 0:
            raise ValueError("RetryBudget takes no negative ratio, per_second or burst")
        self._ratio, self._per_second, self._burst = ratio, per_second, burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()
        self._lock = threading.Lock()  # the blocking client may be shared by threads

    @property
    def tokens(self) -> float:
        """The balance now: below zero, retries are queued for tokens still to come."""
        with self._lock:
            self._refill()
            return self._tokens

    def sent(self) -> None:
        """A first send: it earns ``ratio`` of a retry."""
        with self._lock:
            self._refill()
            self._tokens = min(self._burst, self._tokens + self._ratio)

    def reserve(self, wait: float, within: float) -> float | None:
        """Take a token for a retry due in ``wait`` seconds: the seconds to wait for it (``wait``,
        or longer when the token is still to come), or ``None`` when that would pass ``within``
        seconds (then nothing is taken)."""
        with self._lock:
            self._refill()
            short = 1.0 - self._tokens  # tokens still to earn before this one is ours
            if short > 0:
                if self._per_second == 0:
                    return None
                wait = max(wait, short / self._per_second)
            if wait > within:
                return None
            self._tokens -= 1.0
            return wait

    def _refill(self) -> None:
        now = self._clock()
        earned = (now - self._at) * self._per_second
        self._tokens, self._at = min(self._burst, self._tokens + earned), now


class Attempts:
    """One call's sends under a policy and its client's budget: when to send again, if ever."""

    def __init__(
        self, policy: RetryPolicy, budget: RetryBudget, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Made at the call's first send (which earns the budget its share)."""
        self.policy, self._budget, self._clock = policy, budget, clock
        self._started = clock()
        self.retries = 0
        budget.sent()

    def next_wait(self, server_says: float | None) -> float | None:
        """Seconds to wait before sending again, or ``None``: stop, the last answer holds."""
        elapsed = self._clock() - self._started
        delay = self.policy.wait(self.retries, elapsed, server_says)
        if delay is None:
            return None
        delay = self._budget.reserve(delay, self.policy.max_seconds - elapsed)
        if delay is not None:
            self.retries += 1
        return delay


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
