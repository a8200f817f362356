"""A real ``seqgpt-serve serve`` process for tests: free port, readiness polled on /health with a
deadline, the whole process group killed afterwards (after vLLM's tests/utils.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

STARTUP_DEADLINE_S = 240.0
# The console script installed beside this interpreter: tests run what users run.
SEQGPT_SERVE = Path(sys.executable).parent / "seqgpt-serve"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_tiny_model(directory: Path) -> Path:
    """The tiny random-weight checkpoint, made through the real CLI."""
    if not (directory / "config.json").exists():
        subprocess.run(
            [str(SEQGPT_SERVE), "make-test-model", str(directory)],
            check=True,
            capture_output=True,
        )
    return directory


class RemoteServer:
    """``seqgpt-serve serve`` in its own process group; use as a context manager."""

    def __init__(self, model: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [str(SEQGPT_SERVE), "serve", "--model", str(model)]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), *args]
        self._log = Path(os.environ.get("TMPDIR", "/tmp")) / f"seqgpt-server-{self.port}.log"
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )

    def __enter__(self) -> RemoteServer:
        self.wait_ready()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def wait_ready(self) -> None:
        """Poll /health until it answers 200; fail with the log tail if the deadline passes."""
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"server exited ({self._process.returncode}):\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"server not ready in {STARTUP_DEADLINE_S}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's output, for failure messages."""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the process group, then kill it if it lingers."""
        if self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=30)
