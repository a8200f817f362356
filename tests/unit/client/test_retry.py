"""The retry policy's arithmetic (floor, jitter, exponential growth, cap, the count and time
bounds), the retry budget, and ``Retry-After`` read. Every draw is a fixed or seeded one and every
clock a fake: no statistics, no waiting."""

from __future__ import annotations

import heapq
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from serving.client.retry import Attempts, RetryBudget, RetryPolicy, retry_after

LOW, HIGH = (lambda: 0.0), (lambda: 1.0)  # the jitter's two ends


class Clock:
    """A fake monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("retries", "server_says", "low", "high"),
    [
        # The floor: nothing, 0, or a value below the first backoff waits the first backoff.
        (0, None, 0.5, 0.75),
        (0, 0.0, 0.5, 0.75),
        (0, 0.2, 0.5, 0.75),
        # Exponential growth, with or without the server's value under it.
        (1, None, 1.0, 1.5),
        (2, 0.0, 2.0, 3.0),
        (3, 1.0, 4.0, 6.0),
        # The server's value when it is the larger, jittered too.
        (0, 1.0, 1.0, 1.5),
        (1, 3.0, 3.0, 4.5),
        # The cap on the doubling (15 s), but not on the server's value.
        (5, None, 15.0, 22.5),
        (60, None, 15.0, 22.5),
        (5000, 0.0, 15.0, 22.5),
        (2, 40.0, 40.0, 60.0),
    ],
)
def test_the_wait_is_the_larger_of_the_server_and_the_backoff_jittered_up(
    retries: int, server_says: float | None, low: float, high: float
) -> None:
    policy = RetryPolicy(max_retries=None, max_seconds=1e9)
    assert RetryPolicy(rng=LOW).backoff(retries, server_says) == low
    assert RetryPolicy(rng=HIGH).backoff(retries, server_says) == high
    seeded = RetryPolicy(rng=random.Random(26).random)
    assert all(low <= seeded.backoff(retries, server_says) < high for _ in range(50))
    assert policy.wait(retries, 0.0, server_says) is not None


def test_the_jitter_spreads_calls_refused_together() -> None:
    """64 calls told Retry-After: 1 at once do not all wait the same (a seeded draw)."""
    policy = RetryPolicy(rng=random.Random(7).random)
    waits = sorted(policy.backoff(0, 1.0) for _ in range(64))
    assert waits[0] >= 1.0
    assert waits[-1] < 1.5
    assert waits[-1] - waits[0] > 0.4


@pytest.mark.parametrize(
    ("max_retries", "retries", "waits"),
    [(2, 0, True), (2, 1, True), (2, 2, False), (0, 0, False), (None, 500, True)],
)
def test_the_count_bounds_the_retries(max_retries: int | None, retries: int, waits: bool) -> None:
    policy = RetryPolicy(max_retries=max_retries, max_seconds=1e9, rng=LOW)
    assert (policy.wait(retries, 0.0, 0.0) is not None) is waits


@pytest.mark.parametrize(
    ("elapsed", "server_says", "rng", "expected"),
    [
        (4.0, 6.0, LOW, 6.0),  # ends at 10 s: waited
        (4.0, 6.0, HIGH, None),  # its jitter would end it at 13 s: not started
        (4.0, 6.5, LOW, None),
        (0.0, 3600.0, LOW, None),
        (9.6, 0.0, LOW, None),  # even the floor would pass the bound
    ],
)
def test_the_time_bounds_the_retries_before_the_wait(
    elapsed: float, server_says: float, rng: object, expected: float | None
) -> None:
    """A wait that would end past ``max_seconds`` is not started: the last answer holds."""
    policy = RetryPolicy(max_retries=None, max_seconds=10.0, rng=rng)  # type: ignore[arg-type]
    assert policy.wait(0, elapsed, server_says) == expected


@pytest.mark.parametrize(
    "bad",
    [{"first_backoff_s": 0.0}, {"first_backoff_s": 20.0}, {"jitter": -0.1}],
)
def test_a_policy_that_would_not_back_off_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_the_budget_spends_its_burst_then_queues_retries_at_its_rate() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, per_second=10.0, burst=10.0, clock=clock)
    assert [budget.reserve(0.5, 60.0) for _ in range(10)] == [0.5] * 10
    # Past the burst each retry waits for its own token, 0.1 s apart.
    assert [budget.reserve(0.0, 60.0) for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert budget.reserve(0.5, 60.0) == pytest.approx(0.5)  # the 4th token comes at 0.4 s
    assert budget.tokens == pytest.approx(-4.0)
    clock.now = 1.0  # 10 tokens earned: the queue paid, 6 to spend
    assert budget.tokens == pytest.approx(6.0)


def test_a_retry_whose_token_comes_too_late_takes_none() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.0, per_second=1.0, burst=1.0, clock=clock)
    assert budget.reserve(0.5, 5.0) == 0.5
    assert budget.reserve(0.5, 0.9) is None  # its token would come in 1 s
    assert budget.reserve(0.5, 5.0) == pytest.approx(1.0)
    assert RetryBudget(per_second=0.0, burst=0.0).reserve(0.5, 60.0) is None


@pytest.mark.parametrize(
    ("sends", "ratio", "burst", "tokens"),
    [(5, 0.2, 10.0, 1.0), (100, 0.2, 10.0, 10.0), (30, 0.1, 2.0, 2.0), (3, 0.0, 5.0, 0.0)],
)
def test_first_sends_earn_a_share_of_a_retry_up_to_the_burst(
    sends: int, ratio: float, burst: float, tokens: float
) -> None:
    budget = RetryBudget(ratio=ratio, per_second=0.0, burst=burst, clock=Clock())
    for _ in range(int(burst)):  # spend what it starts with
        assert budget.reserve(0.0, 1.0) == 0.0
    assert budget.reserve(0.0, 1.0) is None  # nothing left, none to come with time
    for _ in range(sends):
        budget.sent()
    assert budget.tokens == pytest.approx(tokens)


def test_calls_refused_for_5_s_send_what_the_budget_allows() -> None:
    """64 calls that a server refuses with Retry-After: 0 for 5 s (simulated on a fake clock,
    every send at the moment its wait ends): 64 first sends, then the budget's 10 banked and 10
    a second, however many calls wait."""
    clock = Clock()
    budget = RetryBudget(clock=clock)
    policy = RetryPolicy(max_retries=None, max_seconds=300.0, rng=random.Random(5).random)
    calls = [Attempts(policy, budget, clock) for _ in range(64)]
    due = [(0.0, n) for n in range(64)]
    sends = 0
    while due and due[0][0] <= 5.0:
        clock.now, n = heapq.heappop(due)
        sends += 1
        wait = calls[n].next_wait(0.0)
        assert wait is not None
        assert wait >= 0.5  # the floor
        heapq.heappush(due, (clock.now + wait, n))
    assert sends <= 64 + 10 + 10 * 5


def test_a_call_stops_when_its_time_is_up() -> None:
    clock = Clock()
    policy = RetryPolicy(max_retries=None, max_seconds=2.0, rng=LOW)
    attempts = Attempts(policy, RetryBudget(), clock)
    assert attempts.next_wait(None) == 0.5
    clock.now = 0.5
    assert attempts.next_wait(None) == 1.0
    clock.now = 1.5
    assert attempts.next_wait(None) is None  # 2 s more would pass the 2 s bound
    assert attempts.retries == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), ("", None)],
)
def test_retry_after_in_seconds(header: str, seconds: float | None) -> None:
    response = httpx.Response(429, headers={"Retry-After": header} if header else {})
    assert retry_after(response) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    response = httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    seconds = retry_after(response)
    assert seconds is not None
    assert 25.0 <= seconds <= 30.0
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert retry_after(httpx.Response(503, headers={"Retry-After": past})) == 0.0
