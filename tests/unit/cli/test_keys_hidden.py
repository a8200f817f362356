"""A key given as ``--api-key KEY`` is out of ``/proc/PID/cmdline`` while every command runs.

Each command runs as a real process, held running by construction while its command line is
read: the batch commands and ``status`` are connected to a loopback socket that never answers
(the test looks once the connection is accepted, so the command is well past its start), and
``serve``'s server child blocks opening a FIFO that the test opens only once it has looked.
``--api-key-file`` gives the key without it ever being on the command line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

KEY = "sk-hide-me-0123456789"
DEADLINE_S = 600.0  # a bound on a stuck start, never a pace
HOLD = """
import os
if os.environ.get("SEQGPT_LIFELINE"):  # only the server child the launcher starts
    with open(os.environ["HOLD_FIFO"], "rb") as hold:
        hold.read()
    os._exit(3)
"""


def _open_writer(fifo: Path, process: subprocess.Popen[bytes]) -> int:
    """The FIFO's write end, once the command has opened its read end (ENXIO until then); a
    command that ended first fails the test instead of hanging it."""
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)  # a wait on the process, not a pace: any speed passes
        assert process.returncode is None, "the command ended before it opened the FIFO"


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(DEADLINE_S)
        yield server


def _start(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "serving.cli.app", *argv]
    return subprocess.Popen(
        command,
        env=env or os.environ.copy(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"text": "a", "label": "x", "fields": {"x": []}}) + "\n")
    return path


@pytest.mark.parametrize(
    "argv",
    [["status", "--timeout", "600", "--api-key", KEY], ["classify", "--api-key=" + KEY]],
    ids=lambda argv: argv[0],
)
def test_a_command_asking_a_server_shows_no_key(
    argv: list[str], listener: socket.socket, rows: Path, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    if argv[0] == "classify":
        argv = [*argv, str(rows), "-o", str(tmp_path / "out"), "--labels", "x,y"]
    process = _start([*argv, "--url", url])
    try:
        connection, _ = listener.accept()  # the command runs: it is asking the server
        with connection:
            command = _cmdline(process.pid)
            assert process.poll() is None
    finally:
        _stop(process)
    assert KEY not in command
    assert argv[0] in command  # the title is still the command's


@pytest.mark.parametrize(
    "argv",
    [["extract", "-o", "{out}"], ["eval", "-o", "{out}", "--task", "extract"]],
    ids=lambda argv: argv[0],
)
def test_a_command_reading_its_schema_shows_no_key(
    argv: list[str], rows: Path, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.json"
    os.mkfifo(schema)
    given = [arg.format(out=tmp_path / "out") for arg in argv]
    process = _start(
        [*given, str(rows), "--schema", str(schema), "--url", "http://x", "--api-key", KEY]
    )
    try:
        writer = _open_writer(schema, process)  # the command is past its start
        try:
            command = _cmdline(process.pid)
            assert process.poll() is None
            os.set_blocking(writer, True)
            os.write(writer, b'{"x": null}')
        finally:
            os.close(writer)
    finally:
        _stop(process)
    assert KEY not in command
    assert given[0] in command


def test_serve_shows_no_key_while_its_server_starts(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(HOLD)
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    env["HOLD_FIFO"] = str(fifo)
    env.pop("VLLM_API_KEY", None)
    process = _start(["serve", "./no-model", "--api-key", KEY], env)
    try:
        writer = _open_writer(
            fifo, process
        )  # the server child is starting: serve is past its start
        try:
            command = _cmdline(process.pid)
            assert process.poll() is None
        finally:
            os.close(writer)
    finally:
        _stop(process)
    assert KEY not in command
    assert "serve" in command


def test_status_reads_the_key_from_a_file(listener: socket.socket, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    process = _start(["status", "--url", url, "--api-key-file", str(key_file)])
    try:
        connection, _ = listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
    finally:
        _stop(process)
    assert f"Authorization: Bearer {KEY}".lower().encode() in request.lower()
