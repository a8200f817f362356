"""The retry policy's waits and its two bounds (count and time), and ``Retry-After`` read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from serving.client.retry import RetryPolicy, retry_after


def test_the_servers_retry_after_is_the_wait() -> None:
    assert RetryPolicy().wait(0, elapsed=0.0, server_says=3.0) == 3.0


def test_without_retry_after_the_backoff_grows_with_jitter() -> None:
    policy = RetryPolicy(max_retries=None, max_seconds=1e9)
    for retries in range(8):
        bound = min(15.0, 0.5 * 2**retries)
        wait = policy.wait(retries, elapsed=0.0, server_says=None)
        assert wait is not None
        assert bound / 2 <= wait <= bound


def test_the_count_bounds_the_retries() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.wait(1, 0.0, 0.0) == 0.0
    assert policy.wait(2, 0.0, 0.0) is None
    assert RetryPolicy(max_retries=0).wait(0, 0.0, 0.0) is None


def test_the_time_bounds_the_retries_before_the_wait() -> None:
    """A wait that would end past ``max_seconds`` is not started: the last answer holds."""
    policy = RetryPolicy(max_retries=None, max_seconds=10.0)
    assert policy.wait(5, elapsed=4.0, server_says=6.0) == 6.0
    assert policy.wait(5, elapsed=4.0, server_says=6.5) is None
    assert policy.wait(0, elapsed=0.0, server_says=3600.0) is None


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
