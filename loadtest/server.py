"""Start and stop a seqgpt-serve server for load tests and benchmarks.

The server runs in its own process group and is polled on ``/health`` until ready, with a
deadline; ``stop`` ends the whole group (vLLM's engine and workers are child processes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["ServerProcess", "ensure_model", "free_port", "seqgpt_serve"]

PORT_RANGE = (8100, 8199)  # the project's load-test ports; pass --port to pick another
READY_TIMEOUT_S = 240.0


def seqgpt_serve() -> str:
    """The ``seqgpt-serve`` script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("seqgpt-serve")
    return str(script) if script.exists() else "seqgpt-serve"


def free_port(low: int = PORT_RANGE[0], high: int = PORT_RANGE[1]) -> int:
    """The first port in ``[low, high]`` that nothing listens on."""
    for port in range(low, high + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def ensure_model(directory: Path, size: str) -> Path:
    """A random-weight test checkpoint of ``size`` at ``directory``, made if missing."""
    if not (directory / "config.json").exists():
        print(f"making the {size} test model in {directory} ...", flush=True)
        command = [seqgpt_serve(), "make-test-model", str(directory), "--size", size]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return directory


class ServerProcess:
    """``seqgpt-serve serve`` on a local port, as a context manager."""

    def __init__(
        self,
        model: Path | str,
        *,
        port: int | None = None,
        api_key: str | None = None,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [seqgpt_serve(), "serve", "--model", str(model), "--host", "127.0.0.1"]
        self.command += ["--port", str(self.port), "--enforce-eager", *extra_args]
        if api_key:
            self.command += ["--api-key", api_key]
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

    def start(self, timeout: float = READY_TIMEOUT_S) -> ServerProcess:
        """Start the server and wait until ``/health`` answers 200 (or fail with its log)."""
        self._log = self.log_path.open("wb") if self.log_path else None
        self._process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, ended as one in stop()
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _exited(self._process.pid):
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

    def stop(self, grace: float = 30.0) -> None:
        """End the server's process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        process, self._process = self._process, None
        if process is not None:
            # The leader is reaped only at the end, so its id cannot be reused by another
            # process group while we signal this one.
            _signal_group(process.pid, signal.SIGTERM)
            if not _wait_exited(process.pid, grace):
                _signal_group(process.pid, signal.SIGKILL)
                _wait_exited(process.pid, grace)
            _signal_group(process.pid, signal.SIGKILL)  # workers that outlived the server
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


def _exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited, without reaping it."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


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
