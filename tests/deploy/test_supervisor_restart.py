"""deploy/supervisord.conf driven through the Makefile's targets, on a real server (tiny model):
it starts, `seqgpt-serve status` reads it, it comes back by itself after its API server or its
engine core is SIGKILLed, and `make supervise-stop` leaves no process behind.

The Makefile and the file are copied into a fresh folder whose ``.venv`` is the running one, so
the test uses them as written, with their own socket and logs, beside any server a developer
runs. The times from SIGKILL to healthy are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from loadtest.server import free_port, seqgpt_serve, session_processes
from tests.deploy.test_dashboard import dashboard_metric_names
from tests.servers import DTYPE_FLAGS

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "seqgpt560m"
KEY = "supervised-key-5e2b"
READY_TIMEOUT_S = 240.0
# A restart may take this many times the first start (measured) when that is longer than
# READY_TIMEOUT_S: a slow machine gets the time it needs, a server that never comes back fails.
RESTART_VS_START = 3


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A folder laid out like the repository for what the targets use."""
    (tmp_path / "deploy").mkdir()
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "deploy" / "supervisord.conf", tmp_path / "deploy" / "supervisord.conf")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    return tmp_path


class Supervised:
    """The supervised server of one checkout: make targets, supervisor's RPC, /health."""

    def __init__(self, checkout: Path, model: Path) -> None:
        self.checkout = checkout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SEQGPT_MODEL": str(model),
            "SEQGPT_PORT": str(self.port),
            "SEQGPT_SERVE_ARGS": " ".join(["--enforce-eager", "--host", "127.0.0.1", *DTYPE_FLAGS]),
            "VLLM_API_KEY": KEY,
        }
        self.env.pop("SEQGPT_LOG_DIR", None)  # the Makefile's default: <checkout>/logs
        self.log_dir = checkout / "logs"
        self.rpc: Any = None
        self.transport: Any = None

    def make(self, target: str) -> subprocess.CompletedProcess[str]:
        """``make TARGET`` in the checkout, quietly (``-o setup``: the running venv is set up)."""
        command = ["make", "-s", "-C", str(self.checkout), "-o", "setup", target]
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)

    def supervisord_pid(self, timeout: float = 30.0) -> int:
        """supervisord's pid, once its daemon has written it (``make`` returns before that)."""
        path = self.log_dir / "supervisord.pid"
        deadline = time.monotonic() + timeout
        while not (path.exists() and path.read_text().strip()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"supervisord wrote no pid file\n{self.log_tail()}")
            time.sleep(0.1)
        return int(path.read_text())

    def connect(self) -> None:
        from supervisor.xmlrpc import SupervisorTransport

        socket = f"unix://{self.log_dir}/supervisor.sock"
        self.transport = SupervisorTransport(None, None, socket)
        self.rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=self.transport)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def launcher(self) -> tuple[int, str]:
        """The launcher's pid (0 while none runs) and supervisor's state for it."""
        info = self.rpc.supervisor.getProcessInfo(PROGRAM)
        return int(info["pid"]), str(info["statename"])

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def wait_healthy(self, after: int = 0, timeout: float = READY_TIMEOUT_S) -> int:
        """Wait until a launcher other than ``after`` serves /health 200; return its pid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, state = self.launcher()
            # EXITED is a passing state between an exit and the restart; FATAL is final.
            assert state != "FATAL", f"{state}\n{self.log_tail()}"
            if pid not in {0, after} and self.healthy():
                return pid
            time.sleep(0.5)
        raise TimeoutError(f"not healthy after {timeout:.0f} s\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        log = self.log_dir / f"{PROGRAM}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and every process below it."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def running(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies are not)."""
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def kill_and_time(
    server: Supervised, launcher: int, victim: int, timeout: float
) -> tuple[int, float]:
    """SIGKILL ``victim``; wait (up to ``timeout`` s) for a new launcher to serve /health 200.
    Old tree all gone."""
    old = {process.pid for process in tree(launcher)}
    started = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    new_launcher = server.wait_healthy(after=launcher, timeout=timeout)
    elapsed = time.monotonic() - started
    assert running(old) == set(), "processes of the killed server outlived it"
    return new_launcher, elapsed


def api_server(launcher: int) -> int:
    """The launcher's child: vLLM's API server (``python -m serving.entry``)."""
    (child,) = psutil.Process(launcher).children()
    assert "serving.entry" in child.cmdline()
    return int(child.pid)


def engine_core(launcher: int) -> int:
    (core,) = [p for p in tree(launcher) if "EngineCore" in " ".join(p.cmdline())]
    return int(core.pid)


@pytest.fixture
def supervised(checkout: Path, tiny_model: Path) -> Iterator[Supervised]:
    server = Supervised(checkout, tiny_model)
    started = server.make("supervise")
    sid = 0
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        server.connect()
        sid = server.supervisord_pid()
        yield server
    finally:  # whatever the test did: nothing of this supervisord may survive it
        server.close()
        for pid in [sid, *session_processes(sid)] if sid else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue


def check_the_running_server(server: Supervised, launcher: int) -> None:
    """supervisorctl and ``seqgpt-serve status`` see it, the key is on no command line, and
    /metrics has the series the dashboard reads."""
    status = server.make("supervise-status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.split()[:2] in ([PROGRAM, "RUNNING"], [PROGRAM, "STARTING"])
    env = {**os.environ, "VLLM_API_KEY": KEY}
    command = [seqgpt_serve(), "status", "--url", server.url]
    seen = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.startswith("up: ")
    assert httpx.get(f"{server.url}/v1/models", timeout=5).status_code == 401
    assert not any(KEY in " ".join(p.cmdline()) for p in tree(launcher))
    # The Grafana dashboard's vLLM series are on a real /metrics.
    auth = {"Authorization": f"Bearer {KEY}"}
    metrics = httpx.get(f"{server.url}/metrics", headers=auth, timeout=5).text.splitlines()
    exported = {line.split("{")[0].split()[0] for line in metrics if line[:1] not in "#"}
    assert {name for name in dashboard_metric_names() if name.startswith("vllm:")} <= exported


def test_supervisor_restarts_the_server_and_stops_it_cleanly(supervised: Supervised) -> None:
    started = time.monotonic()
    first = supervised.wait_healthy()
    restart_s = max(READY_TIMEOUT_S, RESTART_VS_START * (time.monotonic() - started))
    check_the_running_server(supervised, first)

    second, api_s = kill_and_time(supervised, first, api_server(first), restart_s)
    third, core_s = kill_and_time(supervised, second, engine_core(second), restart_s)
    print(f"\nSIGKILL of the API server -> /health 200 again: {api_s:.1f} s")
    print(f"SIGKILL of the engine core -> /health 200 again: {core_s:.1f} s")

    seen = {process.pid for process in tree(third)}
    sid = supervised.supervisord_pid()
    stopped = supervised.make("supervise-stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    deadline = time.monotonic() + 60
    while running({sid}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running({sid, *seen}) == set()
    assert session_processes(sid) == []
    log = (supervised.log_dir / "supervisord.log").read_text()
    assert f"stopped: {PROGRAM} (exit status 0)" in log
