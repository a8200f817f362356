"""The launcher as the server's parent, with a small fake server (a child that starts a
grandchild, as vLLM's API server starts its engine core): exit statuses, forwarded signals, and
no process of the tree left behind, whatever ended first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from serving.process.supervisor import STARTING_RESEND_FACTOR, exit_status

ROOT = Path(__file__).resolve().parents[3]
FAKE_SERVER = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time

    mode, pids, grandchild_mode = sys.argv[1:4]
    grandchild = subprocess.Popen([sys.executable, "-c", (
        "import signal, time\\n"
        f"if {grandchild_mode!r} == 'stubborn': signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "print('ready', flush=True)\\n"
        "time.sleep(600)"
    )], stdout=subprocess.PIPE)
    grandchild.stdout.readline()  # its signal disposition is in place

    missed = []
    sigterms = []

    def drained(signum, frame):  # like the plugin: on SIGUSR1, finish (here: at once), exit 0
        open(pids + ".drained", "w").close()
        if mode != "stalls":  # stalls: requests in flight outlast the drain
            stop(signum, frame)

    def stop(signum, frame):  # like vLLM: stop the engine, then exit 0
        if signum == signal.SIGTERM:
            sigterms.append(signum)
            with open(pids + ".sigterms", "w") as f:
                f.write(str(len(sigterms)))
        if mode in ("deaf", "stuck") and not missed:  # like vLLM waiting for its engine: lost,
            missed.append(signum)
            if mode == "deaf":  # and the start-up goes on to the plugin's SIGUSR1 handler
                signal.signal(signal.SIGUSR1, drained)
            return  # stuck: its engine never makes contact
        grandchild.terminate()
        grandchild.wait()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if mode in ("drains", "stalls"):
        signal.signal(signal.SIGUSR1, drained)
    with open(pids + ".tmp", "w") as f:
        json.dump({"child": os.getpid(), "grandchild": grandchild.pid}, f)
    os.rename(pids + ".tmp", pids)
    if mode == "exit0":
        sys.exit(0)
    if mode == "exit3":
        sys.exit(3)
    if mode == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    while True:
        time.sleep(1)
    """
)
RESEND_IN_TESTS = 0.5
LAUNCHER = (
    "import os, sys\n"
    "from serving.process.supervisor import supervise\n"
    "drain = float(os.environ.get('TEST_DRAIN_S', '0'))\n"
    "sys.exit(supervise(sys.argv[1:], dict(os.environ), grace=1.0, resend=0.5, drain=drain))\n"
)
DEADLINE_S = 20.0


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


class Launched:
    """The launcher running the fake server; ``pids`` once the fake server has started."""

    def __init__(
        self, tmp_path: Path, mode: str, grandchild: str = "polite", drain: float = 0
    ) -> None:
        fake = tmp_path / "fake_server.py"
        fake.write_text(FAKE_SERVER)
        self.pids_file = tmp_path / f"pids-{mode}-{grandchild}.json"
        command = [sys.executable, "-c", LAUNCHER, sys.executable, str(fake)]
        self.process = subprocess.Popen(
            [*command, mode, str(self.pids_file), grandchild],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TEST_DRAIN_S": str(drain)},
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        _until(self.pids_file.exists, "the fake server did not start")
        self.pids: dict[str, int] = json.loads(self.pids_file.read_text())

    def finish(self) -> tuple[int, str]:
        """The launcher's exit status and stderr; every process of the tree has ended."""
        _, err = self.process.communicate(timeout=DEADLINE_S)
        _until(lambda: not any(map(_running, self.pids.values())), f"left running: {self.pids}")
        return self.process.returncode, err

    def kill(self) -> None:
        for pid in [self.process.pid, *self.pids.values()]:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()


Launch = Callable[..., Launched]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    started: list[Launched] = []

    def start(mode: str, grandchild: str = "polite", drain: float = 0) -> Launched:
        started.append(Launched(tmp_path, mode, grandchild, drain))
        return started[-1]

    yield start
    for launched in started:
        launched.kill()


def test_a_server_that_stops_by_itself_is_a_failure(launch: Launch) -> None:
    status, err = launch("exit0").finish()
    assert status == 1
    assert err.startswith("error: the server exited with status 0 without being asked to stop")
    assert err.count("\n") == 1


def test_the_servers_failure_status_is_ours(launch: Launch) -> None:
    assert launch("exit3").finish()[0] == 3


def test_a_killed_server_is_128_plus_the_signal(launch: Launch) -> None:
    assert launch("killed").finish()[0] == 128 + signal.SIGKILL


def test_orphans_that_ignore_sigterm_get_sigkill(launch: Launch) -> None:
    status, _ = launch("exit3", grandchild="stubborn").finish()
    assert status == 3


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_is_forwarded_and_a_clean_stop_is_0(
    launch: Launch, sig: signal.Signals
) -> None:
    launched = launch("serve")
    os.kill(launched.process.pid, sig)
    assert launched.finish() == (0, "")


def _marks(launched: Launched) -> tuple[bool, str]:
    """Whether the fake server was asked to drain, and how many SIGTERMs it got."""
    drained = launched.pids_file.with_name(launched.pids_file.name + ".drained")
    sigterms = launched.pids_file.with_name(launched.pids_file.name + ".sigterms")
    return drained.exists(), sigterms.read_text() if sigterms.exists() else "0"


@pytest.mark.parametrize("drain", [30, 0])
def test_sigterm_asks_a_serving_server_to_drain(launch: Launch, drain: float) -> None:
    launched = launch("drains", drain=drain)
    os.kill(launched.process.pid, signal.SIGTERM)
    assert launched.finish() == (0, "")
    assert _marks(launched) == (True, "0")


def test_a_starting_server_gets_sigterm_at_once(launch: Launch) -> None:
    launched = launch("serve", drain=60)  # SIGUSR1 ignored, as before the plugin is up
    started = time.monotonic()
    os.kill(launched.process.pid, signal.SIGTERM)
    assert launched.finish() == (0, "")
    assert time.monotonic() - started < 10
    assert _marks(launched) == (False, "1")


def test_a_starting_server_that_lost_its_sigterm_is_asked_to_drain_once_it_can(
    launch: Launch,
) -> None:
    """Never a second SIGTERM: vLLM, stopping its start-up, would be interrupted half-way."""
    launched = launch("deaf", drain=30)
    os.kill(launched.process.pid, signal.SIGTERM)
    assert launched.finish() == (0, "")
    assert _marks(launched) == (True, "1")


def test_a_starting_server_stuck_after_losing_its_sigterm_gets_it_again_later(
    launch: Launch,
) -> None:
    """Not ``resend`` seconds later: vLLM's stop of its start-up would be interrupted."""
    launched = launch("stuck", drain=30)
    started = time.monotonic()
    os.kill(launched.process.pid, signal.SIGTERM)
    assert launched.finish() == (0, "")
    assert time.monotonic() - started >= STARTING_RESEND_FACTOR * RESEND_IN_TESTS
    assert _marks(launched) == (False, "2")


def test_a_drain_that_lasts_too_long_is_followed_by_sigterm(launch: Launch) -> None:
    launched = launch("stalls", drain=1.5)
    started = time.monotonic()
    os.kill(launched.process.pid, signal.SIGTERM)
    assert launched.finish() == (0, "")
    assert time.monotonic() - started >= 1.5
    assert _marks(launched) == (True, "1")


def test_a_second_sigterm_does_not_wait_for_the_drain(launch: Launch) -> None:
    launched = launch("stalls", drain=60)
    started = time.monotonic()
    os.kill(launched.process.pid, signal.SIGTERM)
    time.sleep(0.3)
    os.kill(launched.process.pid, signal.SIGTERM)
    assert launched.finish() == (0, "")
    assert time.monotonic() - started < 10


def test_the_server_dies_with_a_sigkilled_launcher(launch: Launch) -> None:
    launched = launch("serve")
    os.kill(launched.process.pid, signal.SIGKILL)
    assert launched.finish()[0] == -signal.SIGKILL


@pytest.mark.parametrize(
    ("returncode", "stop_requested", "status"),
    [
        (0, False, 1),
        (0, True, 0),
        (3, False, 3),
        (3, True, 3),
        (-signal.SIGKILL, False, 137),
        (-signal.SIGKILL, True, 137),
        (-signal.SIGTERM, True, 0),
        (-signal.SIGTERM, False, 143),
        (128 + signal.SIGINT, True, 0),  # the server's own exit after an interruption
        (128 + signal.SIGINT, False, 130),
    ],
)
def test_exit_status(returncode: int, stop_requested: bool, status: int) -> None:
    assert exit_status(returncode, stop_requested=stop_requested) == status
