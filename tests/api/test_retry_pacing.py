"""The batch CLI's ``--url`` run (``run_batch`` with its real runner and client) against a real
loopback server that refuses every row with a 503 (``tests/api/refusing_server.py``, a process
of its own): how hard the run presses on it, and whether its retries come back spread or as one
burst. Both are bounded by what the run sends, never by how fast this machine sends it."""

from __future__ import annotations

import bisect
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.batch.job import BatchJob, run_batch
from serving.batch.remote import DEFAULT_CONCURRENCY, http_source

ROOT = Path(__file__).resolve().parents[2]
ROWS = 1000  # more rows than the run is let send: it never runs out of them

Serve = Callable[..., str]


@pytest.fixture
def refusing() -> Iterator[Serve]:
    """Start a refusing server with the given options; its URL."""
    processes: list[subprocess.Popen[str]] = []

    def serve(retry_after: str, *options: str) -> str:
        command = [sys.executable, "-m", "tests.api.refusing_server", retry_after, *options]
        command += ["--stop-pid", str(os.getpid()), "--hold", str(DEFAULT_CONCURRENCY)]
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        processes.append(process)
        assert process.stdout is not None
        url = f"http://127.0.0.1:{int(process.stdout.readline())}"
        deadline = time.monotonic() + 60
        while not _healthy(url):
            assert time.monotonic() < deadline, "the refusing server did not answer /health"
            time.sleep(0.1)
        return url

    yield serve
    for process in processes:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()  # reaps it and closes its stdout


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.TransportError:  # listening already; uvicorn still starting
        return False


def _run(tmp_path: Path, url: str) -> tuple[int, list[dict[str, Any]]]:
    """The batch run at its default concurrency until the server stops it; the rows' arrivals."""
    source = tmp_path / "rows.jsonl"
    lines = (json.dumps({"id": f"r{n}", "text": f"row {n}"}) + "\n" for n in range(ROWS))
    source.write_text("".join(lines))
    job = BatchJob("classify", source, tmp_path / "out.jsonl", "a,b")
    status = run_batch(job, http_source(url, None, None), lambda _line: None)
    return status, httpx.get(f"{url}/arrivals").json()


def _soonest_resend(arrivals: list[dict[str, Any]]) -> float:
    """The shortest time from a row's refusal to its next arrival."""
    answered: dict[str, float] = {}
    soonest = float("inf")
    for arrival in arrivals:
        if arrival["id"] in answered:
            soonest = min(soonest, arrival["at"] - answered[arrival["id"]])
        answered[arrival["id"]] = arrival.get("answered", float("inf"))
    return soonest


def test_a_server_saying_retry_after_0_gets_a_few_hundred_requests_in_5_s(
    tmp_path: Path, refusing: Serve
) -> None:
    """Retry-After: 0 is no licence to send again at once: the floor, the backoff and the budget
    keep 64 rows refused for 5 s to a bounded count (before: 440-560 requests a second)."""
    status, arrivals = _run(tmp_path, refusing("0", "--stop-after-s", "5"))
    assert status == 128 + signal.SIGINT
    # Counted by the server's clock, so a stop that comes late on a busy machine adds nothing.
    times = sorted(arrival["at"] for arrival in arrivals)
    sent = bisect.bisect_right(times, times[0] + 5.0)
    # 64 first sends, then retries: 10 banked and 10 a second (RetryBudget's defaults), 124.
    assert DEFAULT_CONCURRENCY <= sent <= 150, f"{sent} requests in 5 s"
    # No row is sent again sooner than the floor (a slow machine only makes it later).
    assert _soonest_resend(arrivals) >= 0.5


def test_rows_refused_together_come_back_spread(tmp_path: Path, refusing: Serve) -> None:
    """64 rows refused at once with Retry-After: 1 must not all come back 1 s later at once."""
    stop_at = str(2 * DEFAULT_CONCURRENCY)
    _, arrivals = _run(tmp_path, refusing("1", "--stop-at", stop_at))
    times = sorted(arrival["at"] for arrival in arrivals)
    retries = times[DEFAULT_CONCURRENCY : 2 * DEFAULT_CONCURRENCY]
    in_50_ms = max(
        bisect.bisect_right(retries, start + 0.05) - index for index, start in enumerate(retries)
    )
    assert in_50_ms <= DEFAULT_CONCURRENCY // 4, f"{in_50_ms} retries within 50 ms"
