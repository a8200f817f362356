"""Per-tenant token buckets (an injected clock), OpenAI's rate-limit headers, N processes."""

from __future__ import annotations

import pytest

from serving.core.ratelimits import Bucket, Limiter, TenantLimits, duration
from serving.core.tenants import Tenant, key_digest


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_bursts_its_minute_then_refills_at_its_pace() -> None:
    clock = Clock()
    bucket = Bucket(3, clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(20.0)  # 3 a minute: one every 20 s
    clock.now = 10.0
    assert bucket.take() == pytest.approx(10.0)
    clock.now = 20.0
    assert bucket.take() == 0.0
    clock.now = 1000.0
    assert bucket.level() == 3  # never more than its capacity


def test_a_charge_puts_the_bucket_in_debt_until_it_refills() -> None:
    clock = Clock()
    bucket = Bucket(600, clock)  # 10 tokens a second
    bucket.charge(700)
    assert bucket.level() == pytest.approx(-100)
    assert bucket.wait_s(1.0) == pytest.approx(10.1)
    assert bucket.reset_s() == pytest.approx(70.0)


def test_a_request_is_refused_while_its_tokens_are_in_debt_and_takes_nothing() -> None:
    clock = Clock()
    limits = TenantLimits(Bucket(10, clock), Bucket(100, clock))
    assert limits.admit() == 0.0
    limits.charge(150)
    wait = limits.admit()
    assert wait > 0
    assert limits.requests is not None
    assert limits.requests.level() == pytest.approx(9)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0201, "21ms"),
        (0.02, "20ms"),
        (1, "1s"),
        (1.2, "2s"),
        (59.5, "1m0s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
    ],
)
def test_durations_read_like_openais(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_headers_say_limit_remaining_and_reset() -> None:
    clock = Clock()
    limits = TenantLimits(Bucket(60, clock), None)
    limits.admit()
    headers = {k.decode(): v.decode() for k, v in limits.headers()}
    assert headers == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
    }
    tokens = TenantLimits(None, Bucket(1000, clock))
    tokens.charge(400)
    headers = {k.decode(): v.decode() for k, v in tokens.headers()}
    assert headers == {
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "600",
        "x-ratelimit-reset-tokens": "24s",
    }


def _tenant(**limits: int) -> Tenant:
    return Tenant(name="t", key_sha256=key_digest("k"), scopes=frozenset({"tasks"}), **limits)  # type: ignore[arg-type]


def test_each_of_n_processes_enforces_its_share() -> None:
    clock = Clock()
    limits = Limiter(processes=2, clock=clock).of(_tenant(requests_per_minute=7))
    assert limits is not None
    admitted = sum(limits.admit() == 0 for _ in range(10))
    assert admitted == 3  # 3.5 per process: two processes together never pass 7


def test_no_limit_no_buckets_and_changed_limits_new_buckets() -> None:
    limiter = Limiter()
    assert limiter.of(_tenant()) is None
    first = limiter.of(_tenant(requests_per_minute=5))
    assert limiter.of(_tenant(requests_per_minute=5)) is first
    assert limiter.of(_tenant(requests_per_minute=6)) is not first
