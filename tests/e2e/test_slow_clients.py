"""Slow and anonymous clients on the real server: 60 connections without a key trickle their
bodies into open and guarded paths. They hold little memory, every one is closed by the server
within its body deadline (plus the linger of a refusal), and none of them holds up a drain.

The server gets short deadlines (5 s) so the test is short; the product's are 60 s and 10 s."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadtest.server import ServerProcess
from tests.servers import tiny_server

KEY = "slow-clients-key"
BODY_TIMEOUT_S = 5.0
LINGER_S = 5.0
CONNECTIONS = 60
# Without the body deadline a drain would wait this long for the trickling connections.
DRAIN_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def slow(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "SEQGPT_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "SEQGPT_BODY_LINGER_S": str(LINGER_S),
        "SEQGPT_DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S),
    }
    log = tmp_path_factory.mktemp("logs") / "slow.log"
    with tiny_server(tiny_model, api_key=KEY, env=env, log_path=log) as server:
        yield server


def _api_server(server: ServerProcess) -> psutil.Process:
    (child,) = psutil.Process(server.pid).children()
    return child


def _trickle(
    port: int, path: str, declared: int, first: int, closed: list[float], sent: threading.Semaphore
) -> None:
    """POST ``path`` declaring ``declared`` bytes, send ``first`` at once (then release
    ``sent``), then one byte every second until the server closes the connection; record when
    it did."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n"
        sock.sendall(head.encode() + b"a" * first)
        sent.release()
        sock.settimeout(1.0)
        while time.monotonic() - started < 100:
            try:
                if sock.recv(65536) == b"":
                    break  # the server closed it
            except TimeoutError:
                pass
            except OSError:  # reset
                break
            try:
                sock.sendall(b"a")
            except OSError:
                break
        closed.append(time.monotonic() - started)


def _start_tricklers(port: int) -> tuple[list[threading.Thread], list[float], threading.Semaphore]:
    """The trickling threads, the times their connections were closed at, and a semaphore
    released once per connection that has sent its head and first bytes."""
    closed: list[float] = []
    sent = threading.Semaphore(0)
    threads = []
    for index in range(CONNECTIONS):
        # Open paths with a body under their 4 KiB and over it (the 2 MB of the finding), and a
        # guarded path without the key: each a refusal or a deadline, never a body kept.
        path, declared, first = [
            ("/ping", 4000, 10),
            ("/ping", 2_096_000, 2_000_000),
            ("/v1/classify", 2_000_000, 1_000_000),
        ][index % 3]
        thread = threading.Thread(target=_trickle, args=(port, path, declared, first, closed, sent))
        thread.start()
        threads.append(thread)
    return threads, closed, sent


def test_trickling_clients_hold_little_memory_and_are_all_closed(slow: ServerProcess) -> None:
    api = _api_server(slow)
    before = api.memory_info().rss
    threads, closed, _ = _start_tricklers(slow.port)
    peak = before
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, api.memory_info().rss)
        time.sleep(0.2)
    grown_mb = (peak - before) / 1e6
    print(
        f"\n{CONNECTIONS} trickling connections: +{grown_mb:.1f} MB, all closed by "
        f"{max(closed):.1f} s"
    )
    assert len(closed) == CONNECTIONS
    assert grown_mb < 60
    assert max(closed) < BODY_TIMEOUT_S + LINGER_S + 20  # a deadline, not the clients' will


def test_trickling_clients_do_not_hold_up_a_drain(slow: ServerProcess) -> None:
    """The last test of the module: it stops the server."""
    threads, _, sent = _start_tricklers(slow.port)
    for _ in range(CONNECTIONS):  # every connection is in (a sleep of 1 s guessed it before)
        assert sent.acquire(timeout=120), "a trickling client could not connect"
    started = time.monotonic()
    os.kill(slow.pid, signal.SIGTERM)
    status = slow.wait(DRAIN_TIMEOUT_S)
    stopped_s = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=120)
    with contextlib.suppress(Exception):
        slow.stop()
    print(f"\nSIGTERM with {CONNECTIONS} trickling connections: stopped in {stopped_s:.1f} s")
    assert status == 0
    assert stopped_s < BODY_TIMEOUT_S + LINGER_S + 20
