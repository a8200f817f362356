"""deploy/supervisord.conf driven through the Makefile's targets, on a real server (tiny model):
it starts, run by root it runs as the unprivileged user SEQGPT_USER names (unset here: the
default), `seqgpt-serve status` reads it, it comes back by itself after its API server or its
engine core is SIGKILLed, and `make supervise-stop` leaves no process behind.

The Makefile, the file and the model are copied into a fresh folder that other users can read,
as a deployment's checkout is, whose ``.venv`` is the running one, so the test uses them as
written, with their own socket and logs, beside any server a developer runs. One server serves
the module's tests, in order; the last stops it. The times from SIGKILL to healthy are printed
(``pytest -s``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from loadtest.server import free_port, seqgpt_serve, session_processes
from tests.deploy.server_user import ensure_user, let_search
from tests.deploy.test_dashboard import dashboard_metric_names
from tests.servers import DTYPE_FLAGS

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "seqgpt560m"
KEY = "supervised-key-5e2b"
READY_TIMEOUT_S = 240.0
# A restart may take this many times the first start (measured) when that is longer than
# READY_TIMEOUT_S: a slow machine gets the time it needs, a server that never comes back fails.
RESTART_VS_START = 3


MODEL = ".models/tiny"  # relative to the repository root, as the docs' examples
AS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def checkout(tiny_model: Path) -> Iterator[Path]:
    """A folder laid out like the repository for what the targets use, the model included, that
    every user can read (pytest's own temporary folders are for their user only)."""
    folder = Path(tempfile.mkdtemp(prefix="seqgpt-supervised-"))
    try:
        folder.chmod(0o755)
        (folder / "deploy").mkdir()
        shutil.copy(ROOT / "Makefile", folder / "Makefile")
        shutil.copy(ROOT / "deploy" / "supervisord.conf", folder / "deploy" / "supervisord.conf")
        (folder / ".venv").symlink_to(Path(sys.executable).parents[1])
        shutil.copytree(tiny_model, folder / MODEL)
        for path in (folder / MODEL).parent.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server_user(checkout: Path) -> Iterator[pwd.struct_passwd | None]:
    """As root: the user the server runs as, able to read the venv's Python, the source and the
    checkout (docs/operations.md); else None."""
    if not AS_ROOT:
        yield None
        return
    user = ensure_user()
    source = [ROOT, *(Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    python = [Path(os.path.realpath(sys.executable)), Path(sys.prefix), Path(sys.base_prefix)]
    with let_search([*python, *source, checkout], user):
        yield user


class Supervised:
    """The supervised server of one checkout: make targets, supervisor's RPC, /health."""

    def __init__(self, checkout: Path, model: str) -> None:
        self.checkout = checkout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.monotonic()
        self.env = {
            **os.environ,
            "SEQGPT_MODEL": model,
            "SEQGPT_PORT": str(self.port),
            "SEQGPT_SERVE_ARGS": " ".join(["--enforce-eager", "--host", "127.0.0.1", *DTYPE_FLAGS]),
            "VLLM_API_KEY": KEY,
        }
        self.env.pop("SEQGPT_LOG_DIR", None)  # the Makefile's default: <checkout>/logs
        self.env.pop("SEQGPT_USER", None)  # the file's default: seqgpt
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


@pytest.fixture(scope="module")
def supervised(checkout: Path, server_user: pwd.struct_passwd | None) -> Iterator[Supervised]:
    server = Supervised(checkout, MODEL)
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


def ids(pid: int) -> tuple[list[int], list[int]]:
    """Real, effective, saved and filesystem user ids of ``pid``, then its group ids."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    return [int(n) for n in fields["Uid"].split()], [int(n) for n in fields["Gid"].split()]


@pytest.mark.skipif(
    not AS_ROOT,
    reason="only root can switch users: supervisord started by anyone else runs the server as "
    "that user, which is unprivileged already",
)
def test_as_root_the_server_runs_as_an_unprivileged_user(
    supervised: Supervised, server_user: pwd.struct_passwd
) -> None:
    launcher = supervised.wait_healthy()
    assert psutil.Process(launcher).ppid() == supervised.supervisord_pid()  # no shell between
    processes = tree(launcher)
    assert len(processes) >= 3  # the launcher, vLLM's API server, its engine core
    user = (server_user.pw_uid, server_user.pw_gid)
    for process in processes:
        uids, gids = ids(process.pid)
        assert (uids, gids) == ([user[0]] * 4, [user[1]] * 4), process.cmdline()
    assert psutil.Process(api_server(launcher)).environ()["HOME"] == server_user.pw_dir


def test_supervisor_restarts_the_server_and_stops_it_cleanly(supervised: Supervised) -> None:
    first = supervised.wait_healthy()
    restart_s = max(READY_TIMEOUT_S, RESTART_VS_START * (time.monotonic() - supervised.started))
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
