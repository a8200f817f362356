"""``--api-server-count 2`` on the tiny model: one server for the module, two API processes.

vLLM's manager process (the launcher's child) runs the engine and two API server processes
sharing one port. Which process answers is set per connection: a client on one keep-alive
connection stays with one process, and ``/v1/status`` says which (its pid). Each test here opens
a connection per process and checks, after its requests, that it stayed there. The task routes,
batches, the UI login and its logout work across both; the ``seqgpt_*`` metrics on ``/metrics``
are the sum of both; the in-flight bound is split between them; a SIGTERM to the launcher drains
both, each answering the classification it holds, and leaves no process (the last test: it stops
the server).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from loadtest.server import ServerProcess
from tests.servers import paused_engine, tiny_server

pytestmark = pytest.mark.timeout(600)

API_KEY = "multi-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_INFLIGHT = 8  # the server's bound: 4 prompts in flight per API process
LABELS = ["财经", "体育", "娱乐"]
TEXT = "今天上证指数收涨1.2%，券商板块领涨。"
EXIT_TIMEOUT_S = 90.0
CONNECT_TRIES = 30
STARTED = "Application startup complete."
READY_TIMEOUT_S = 240.0
DRAINING = "seqgpt: draining 1 requests in flight, then stopping"


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "SEQGPT_MAX_INFLIGHT": str(MAX_INFLIGHT),
        "SEQGPT_MAX_LABELS": "12",  # 2 extraction prompts at most: within a process's share
        "SEQGPT_SPAN_TOKENS_PER_LABEL": "8",
    }
    log = tmp_path_factory.mktemp("api-servers") / "server.log"
    extra = ("--api-server-count", "2")
    with tiny_server(tiny_model, api_key=API_KEY, env=env, log_path=log, extra_args=extra) as s:
        _wait_for_both_started(log)
        yield s


def _wait_for_both_started(log: Path) -> None:
    """Until both API processes have logged uvicorn's "startup complete": ``/health`` answers as
    soon as one of them does, and a machine under load may start the other seconds later (every
    connection then goes to the first)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while log.read_text(encoding="utf-8", errors="replace").count(STARTED) < 2:
        if time.monotonic() > deadline:
            pytest.fail(f"both API processes did not start within {READY_TIMEOUT_S:g} s")
        time.sleep(0.2)


def _pid(client: httpx.Client) -> int:
    status = client.get("/v1/status", headers=AUTH)
    status.raise_for_status()
    return int(status.json()["pid"])


@pytest.fixture(scope="module")
def pids(server: ServerProcess) -> tuple[int, int]:
    """The two API server processes, as ``/v1/status`` reports them."""
    with ExitStack() as held:  # a held connection loads its process: the next goes to the other
        seen: set[int] = set()
        for _ in range(CONNECT_TRIES):
            seen.add(_pid(held.enter_context(httpx.Client(base_url=server.url))))
            if len(seen) == 2:
                first, second = sorted(seen)
                return first, second
    pytest.fail(f"every connection went to one API process: {seen}")


def _connect(server: ServerProcess, pid: int, *, key: bool = True) -> httpx.Client:
    """A client (sending the key unless ``key`` is false) whose one connection is served by API
    process ``pid``."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with ExitStack() as held:  # connections to the other process, held to load it
        for _ in range(CONNECT_TRIES):
            client = httpx.Client(
                base_url=server.url, headers=AUTH if key else {}, limits=limits, timeout=120
            )
            if _pid(client) == pid:
                return client
            held.callback(client.close)
    pytest.fail(f"no connection reached API process {pid}")


@contextmanager
def _on(server: ServerProcess, pid: int, *, key: bool = True) -> Iterator[httpx.Client]:
    """``_connect``'s client, checked after its requests to be still on process ``pid``."""
    client = _connect(server, pid, key=key)
    try:
        yield client
        assert _pid(client) == pid, "the connection moved to another process"
    finally:
        client.close()


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _manager(server: ServerProcess) -> int:
    """The launcher's child: vLLM's manager process."""
    (pid,) = [pid for pid in server.processes() if _ppid(pid) == server.pid]
    return pid


def _environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(pair.decode().partition("=")[::2] for pair in pairs if b"=" in pair)


def _classify_count(metrics: str) -> float:
    prefix = 'seqgpt_requests_total{status="200",task="classify",tenant="default"}'
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def test_two_api_processes_run_below_vllms_manager(
    server: ServerProcess, pids: tuple[int, int]
) -> None:
    manager = _manager(server)
    assert "serving.entry" in _cmdline(manager)
    assert {_ppid(pid) for pid in pids} == {manager}
    with httpx.Client(base_url=server.url, headers=AUTH) as client:
        status = client.get("/v1/status").json()
    assert status["api_processes"] == 2


def test_task_routes_and_batches_answer_from_both_processes(
    server: ServerProcess, pids: tuple[int, int]
) -> None:
    body = {"text": TEXT, "labels": LABELS}
    batch = {"texts": [TEXT, "皇马主场三比一获胜。"], "labels": LABELS}
    extract = {"text": "张三在北京的阿里巴巴工作。", "labels": ["人物", "地点", "组织机构"]}
    for pid in pids:
        with _on(server, pid) as client:
            assert client.post("/v1/classify", json=body).json()["label"] in LABELS
            assert "fields" in client.post("/v1/extract", json=extract).json()
            results = client.post("/v1/classify/batch", json=batch).json()["results"]
            assert [result["label"] in LABELS for result in results] == [True, True]
            results = client.post("/v1/extract/batch", json={**batch, "labels": "人物,地点"})
            assert len(results.json()["results"]) == 2
    assert server.log_path is not None
    lines = server.log_path.read_text(encoding="utf-8").splitlines()
    answered = {json.loads(line)["pid"] for line in lines if line.startswith('{"time"')}
    assert answered == set(pids)  # the request log says who answered


def test_a_ui_session_from_one_process_holds_in_the_other_until_a_logout_in_either(
    server: ServerProcess, pids: tuple[int, int]
) -> None:
    first, second = pids
    with _on(server, first, key=False) as client:
        login = client.post("/ui/login", data={"key": API_KEY})
        assert login.status_code == 303, login.text
        cookie = {"Cookie": f"seqgpt_ui={login.cookies['seqgpt_ui']}"}
    with _on(server, second, key=False) as browser:
        assert browser.get("/ui/config", headers=cookie).status_code == 200
        assert browser.get("/ui/logout", headers=cookie).status_code == 303
    with _on(server, first, key=False) as client:
        page = client.get("/ui/", headers=cookie)
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login"
        assert client.get("/ui/config", headers=cookie).status_code == 401
    # The logout was written to the launcher's private folder, which both read: it reaches them
    # through the environment of vLLM's manager (theirs is not readable in /proc: vLLM's process
    # titles overwrite it).
    folder = Path(_environ(_manager(server))["SEQGPT_UI_SESSION_DIR"])
    assert folder.stat().st_mode & 0o777 == 0o700
    session = cookie["Cookie"].split(".")[1]
    assert session in json.loads((folder / "revoked.json").read_text(encoding="utf-8"))["ended"]


def test_metrics_are_the_sum_of_both_processes(
    server: ServerProcess, pids: tuple[int, int]
) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH) as client:
        before = _classify_count(client.get("/metrics").text)
    body = {"text": TEXT, "labels": LABELS}
    for pid, count in zip(pids, (2, 3), strict=True):
        with _on(server, pid) as client:
            for _ in range(count):
                client.post("/v1/classify", json=body).raise_for_status()
    for pid in pids:  # either process serves the same totals
        with _on(server, pid) as client:
            assert _classify_count(client.get("/metrics").text) == before + 5


def test_the_bound_is_the_servers_split_between_the_processes(
    server: ServerProcess, pids: tuple[int, int]
) -> None:
    for pid in pids:
        with _on(server, pid) as client:
            status = client.get("/v1/status").json()
            assert status["max_inflight_prompts"] == MAX_INFLIGHT // 2


def _admitted(client: httpx.Client, deadline: float) -> None:
    """Wait until ``client``'s process has a task prompt in flight."""
    while client.get("/v1/status").json()["inflight_prompts"] == 0:
        assert time.monotonic() < deadline, "a classification never reached its process"
        time.sleep(0.02)


def _await_log(server: ServerProcess, start: int, line: str, count: int) -> None:
    """Wait until ``line`` is in the server's log ``count`` times after offset ``start``."""
    assert server.log_path is not None
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    while server.log_path.read_text(encoding="utf-8")[start:].count(line) < count:
        assert time.monotonic() < deadline, f"not {count} x {line!r} in the log"
        time.sleep(0.05)


def test_sigterm_drains_both_processes_and_leaves_nothing(
    server: ServerProcess, pids: tuple[int, int]
) -> None:
    """Last: it stops the module's server. A classification in flight on each process when the
    stop comes is answered in full, then the launcher exits 0 with no process left and a quiet
    log. Both are surely in flight, on any machine: the engine is held still (``paused_engine``)
    from before they are sent until both processes have begun to drain."""
    assert server.log_path is not None
    started = len(server.log_path.read_text(encoding="utf-8"))
    body = {"text": TEXT, "labels": LABELS}
    with ExitStack() as stack:
        clients = [_connect(server, pid) for pid in pids]  # each sends one classification
        watchers = [_connect(server, pid) for pid in pids]  # each reads its process's status
        for client in [*clients, *watchers]:
            stack.callback(client.close)
        pool = stack.enter_context(ThreadPoolExecutor(len(clients)))
        with paused_engine(server):
            answers = [pool.submit(client.post, "/v1/classify", json=body) for client in clients]
            deadline = time.monotonic() + EXIT_TIMEOUT_S
            for watcher in watchers:
                _admitted(watcher, deadline)
            assert not any(answer.done() for answer in answers), "answered with the engine held"
            os.kill(server.pid, signal.SIGTERM)  # the launcher's SIGUSR1 reaches both
            _await_log(server, started, DRAINING, len(pids))
        for answer in answers:
            response = answer.result()
            assert response.status_code == 200, response.text
            assert response.json()["label"] in LABELS
    assert server.wait(EXIT_TIMEOUT_S) == 0
    assert server.processes() == []
    stop_log = server.log_path.read_text(encoding="utf-8")[started:]
    assert stop_log.count(DRAINING) == len(pids)
    for noise in ["Traceback", "died with exit code", "nanobind: leaked", "resource_tracker"]:
        assert noise not in stop_log, noise
