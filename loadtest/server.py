"""Start and stop a seqgpt-serve server for load tests and benchmarks.

The launcher runs in a session of its own and is polled on ``/health`` until ready, with a
deadline. ``stop`` asks it to stop (SIGTERM: it stops vLLM and its engine), and then ends every
process left in that session, whatever its process group (the launcher gives the server one of
its own, and vLLM's data-parallel servers make their own).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["ServerProcess", "ensure_model", "free_port", "seqgpt_serve", "session_processes"]

PORT_RANGE = (8100, 8199)  # the project's load-test ports; pass --port to pick another
READY_TIMEOUT_S = 240.0


def seqgpt_serve() -> str:
    """The ``seqgpt-serve`` script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("seqgpt-serve")
    return str(script) if script.exists() else "seqgpt-serve"


def free_port(low: int = PORT_RANGE[0], high: int = PORT_RANGE[1]) -> int:
    """A port in ``[low, high]`` that nothing listens on, searched from a random start so two
    test sessions on one machine rarely pick the same one."""
    start = random.randint(low, high)
    for port in [*range(start, high + 1), *range(low, start)]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def ensure_model(directory: Path, size: str) -> Path:
    """A random-weight test checkpoint of ``size`` at ``directory``, made if missing; one made
    by an earlier version with another tokenizer is made again (it is ours: random weights)."""
    config = directory / "config.json"
    if config.exists() and _stale(json.loads(config.read_text(encoding="utf-8")), size):
        print(f"the test model in {directory} has an older tokenizer: making it again", flush=True)
        shutil.rmtree(directory)
    if not config.exists():
        print(f"making the {size} test model in {directory} ...", flush=True)
        command = [seqgpt_serve(), "make-test-model", str(directory), "--size", size]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return directory


def _stale(config: dict[str, object], size: str) -> bool:
    from serving.testmodels.random_model import SIZES, tokenizer_name

    ours = config.get("seqgpt_serve_random_weights") is True
    wanted = tokenizer_name(size) if size in SIZES else None
    return ours and wanted is not None and config.get("seqgpt_serve_tokenizer") != wanted


class ServerProcess:
    """``seqgpt-serve serve`` on a local port, as a context manager."""

    def __init__(
        self,
        model: Path | str,
        *,
        port: int | None = None,
        api_key: str | Sequence[str] | None = None,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        enforce_eager: bool = True,
        dtype: str | None = None,
    ) -> None:
        """``enforce_eager`` (the default, for tests) starts in about a third of the time;
        without it vLLM compiles the model, as ``make serve`` runs it. ``dtype`` is vLLM's
        ``--dtype`` (default: none given, the server's own choice)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [seqgpt_serve(), "serve", "--model", str(model), "--host", "127.0.0.1"]
        self.command += ["--port", str(self.port), *(["--enforce-eager"] * enforce_eager)]
        self.command += ["--dtype", dtype] if dtype else []
        self.command += extra_args
        for key in [api_key] if isinstance(api_key, str) else list(api_key or ()):
            self.command += ["--api-key", key]
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

    def spawn(self) -> ServerProcess:
        """Start the launcher without waiting for the server to be ready."""
        self._log = self.log_path.open("wb") if self.log_path else None
        self._process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session, ended as one in stop()
        )
        return self

    def start(self, timeout: float = READY_TIMEOUT_S) -> ServerProcess:
        """Start the server and wait until ``/health`` answers 200 (or fail with its log)."""
        pid = self.spawn().pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _exited(pid):
                self.stop()
                raise RuntimeError(f"server exited before it was ready{self._tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"server not ready after {timeout:.0f} s{self._tail()}")

    @property
    def pid(self) -> int:
        """The launcher's process id (it leads the server's session)."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def processes(self) -> list[int]:
        """The server's processes still running: the launcher's session, zombies aside."""
        return session_processes(self.pid)

    def wait(self, timeout: float) -> int | None:
        """The launcher's exit status (``-N`` for signal N) once it has exited within
        ``timeout`` seconds, else None. It stays unreaped (its id reserved) until ``stop``."""
        deadline = time.monotonic() + timeout
        while (info := _exit_info(self.pid)) is None:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def stop(self, grace: float = 30.0) -> None:
        """Stop the server: SIGTERM to the launcher, SIGKILL after ``grace`` seconds, then
        SIGKILL to anything left in its session."""
        process, self._process = self._process, None
        if process is not None:
            # The launcher is reaped only at the end, so its id (the process group's and the
            # session's) cannot be reused while we signal them.
            _signal_group(process.pid, signal.SIGTERM)
            if not _wait_exited(process.pid, grace):
                _signal_group(process.pid, signal.SIGKILL)
                _wait_exited(process.pid, grace)
            _end_session(process.pid, grace)
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n--- server log (end) ---\n" + "\n".join(text[-lines:])

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _exit_info(pid: int) -> os.waitid_result | None:
    """How our child ``pid`` exited, or None while it runs; without reaping it."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)


def _exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited, without reaping it."""
    return _exit_info(pid) is not None


def _wait_exited(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _exited(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def session_processes(sid: int) -> list[int]:
    """Running processes of session ``sid``, its leader excluded (zombies are not running)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == sid:
            continue
        try:
            stat = (entry / "stat").read_text()
            if os.getsid(int(entry.name)) == sid and stat.rsplit(")", 1)[1].split()[0] != "Z":
                members.append(int(entry.name))
        except (OSError, ProcessLookupError):  # ended while we looked
            continue
    return members


def _end_session(sid: int, grace: float) -> None:
    """SIGKILL every process left in session ``sid`` and wait (``grace`` s at most) for them."""
    deadline = time.monotonic() + grace
    while members := session_processes(sid):
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)
