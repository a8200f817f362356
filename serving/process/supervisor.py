"""Run the server as a child process and stay its parent until the whole tree is gone.

vLLM's API server, run directly, leaves a supervisor guessing: it exits with status 0 when its
engine core dies, and when it is SIGKILLed its engine core keeps running with no parent. The
launcher therefore runs it as a child (never ``exec``) and:

- turns the first SIGTERM into a stop that suits where the server is (``_Stop``):
  - a server that serves (the plugin handles SIGUSR1; the child ignores SIGUSR1 until then) gets
    SIGUSR1: it drains (``serving.http.lifecycle``: new requests get 503, those in flight finish
    for up to ``drain`` seconds) and stops in its own event loop, where vLLM stops its engine
    after its HTTP server. SIGTERM follows only if it still runs ``resend`` seconds after the
    drain: vLLM's own SIGTERM handler stops the engine from a worker thread while its output
    handler still waits for the engine, which then logs a traceback for a stop (a race it often
    loses on a slow machine: ``AsyncLLM.shutdown`` cancels the output handler only after the
    engine client's cleanup has cancelled the task that feeds it);
  - a server that is still starting gets SIGTERM at once (there is nothing to drain), on which
    vLLM abandons its start-up and stops its engine. While vLLM waits for its engine it loses
    that SIGTERM (its ``zmq_socket_ctx`` swallows the KeyboardInterrupt, closing the socket of
    the engine's start-up handshake) and either carries on starting, and is then asked to drain
    as soon as it can (which stops it before it has served anything), or, if its engine had not
    made contact yet, waits for an engine that waits for it (up to VLLM_ENGINE_READY_TIMEOUT_S,
    600 s): the SIGTERM goes again, but only ``STARTING_RESEND_FACTOR * resend`` seconds later,
    when the stop a first SIGTERM caused is over, and only while the server cannot drain;
- forwards SIGINT, a second SIGTERM, and SIGHUP as SIGTERM (vLLM does not handle SIGHUP and
  would die without stopping its engine), and again every ``resend`` seconds until it exits
  (vLLM ignores repeats once it is stopping). The child has its own process group, so a
  terminal's Ctrl-C reaches it once, through us, not twice;
- makes the child die with us (``PR_SET_PDEATHSIG``: SIGTERM, which vLLM handles by stopping its
  engine) and becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``), so the server's orphans
  are re-parented to us instead of to init;
- when the child has exited, ends whatever is left of its tree (SIGTERM, then SIGKILL after
  ``grace`` seconds) and reaps it;
- exits 0 after a requested stop, with the child's status when it failed (128 + N when a signal
  N killed it), and with 1 plus one line when it exited 0 without having been asked to stop.

Linux only (``/proc``, ``prctl``), like vLLM's CPU and CUDA backends.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

__all__ = [
    "GRACE_S",
    "RESEND_S",
    "catches",
    "die_with_parent",
    "end_tree",
    "exit_status",
    "supervise",
]

GRACE_S = 5.0
RESEND_S = 5.0
# A server still starting gets its SIGTERM again only this many RESEND_S later: vLLM, stopping a
# start-up, waits up to VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS (5 s) for its engine, and a repeat
# within that would interrupt its stop half-way (its start-up SIGTERM handler raises
# KeyboardInterrupt every time).
STARTING_RESEND_FACTOR = 3
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# Signals a supervisor (systemd, Kubernetes, a terminal) sends to stop us, and what the child
# gets for each.
_FORWARDED = {
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGINT: signal.SIGINT,
    signal.SIGHUP: signal.SIGTERM,
}


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def die_with_parent(parent: int) -> None:
    """This process gets SIGTERM when ``parent`` dies, even by SIGKILL (``PR_SET_PDEATHSIG``),
    or at once if it already has."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGTERM when ``parent`` dies, even by SIGKILL, and
    ignores SIGUSR1 (the drain request) until it installs its handler."""

    def preexec() -> None:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        die_with_parent(parent)

    return preexec


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its ``SigCgt`` mask in ``/proc``)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


class _Stop:
    """The child's stop: the first SIGTERM a graceful one (``begin``), other stop signals
    forwarded at once; whatever was sent goes again at ``next_at`` while the child runs."""

    def __init__(self, drain: float, resend: float) -> None:
        self.signal: signal.Signals | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.next_at = math.inf
        self.graceful = False  # the stop asked for is the first SIGTERM's
        self.drain_asked = False
        self._drain = drain
        self._resend = resend

    def __call__(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        first = self.signal is None
        self.signal = _FORWARDED[signal.Signals(signum)]
        self.graceful = first and signum == signal.SIGTERM
        if self.graceful:
            self.begin()
        else:
            self.send()

    def begin(self) -> None:
        """Ask the child to drain if it can (it serves), else send it SIGTERM (it starts)."""
        if self.child is None:
            return  # begun once the child exists
        now = time.monotonic()
        if catches(self.child.pid, signal.SIGUSR1):
            self.child.send_signal(signal.SIGUSR1)
            self.drain_asked = True
            self.next_at = now + self._drain + self._resend  # SIGTERM once the drain is over
        else:
            self.child.send_signal(signal.SIGTERM)
            self.next_at = now + STARTING_RESEND_FACTOR * self._resend

    def tick(self) -> None:
        """While the child runs: a child asked to stop while it started, that started all the
        same, is asked to drain at once; the stop goes again when it is time."""
        assert self.child is not None
        due = time.monotonic() >= self.next_at
        if self.graceful and not self.drain_asked:  # starting: SIGUSR1 once it can, or SIGTERM
            if due or catches(self.child.pid, signal.SIGUSR1):
                self.begin()
        elif due:
            self.send()

    def send(self) -> None:
        """Send the stop signal to the child (if both exist)."""
        if self.child is not None and self.signal is not None:
            self.child.send_signal(self.signal)
            self.next_at = time.monotonic() + self._resend


def supervise(
    argv: list[str],
    env: dict[str, str],
    *,
    grace: float = GRACE_S,
    resend: float = RESEND_S,
    drain: float = 0.0,
) -> int:
    """Run ``argv`` as our child until it exits, end its process tree, return our exit status."""
    if sys.platform == "linux":
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    stop = _Stop(drain, resend)
    for signum in _FORWARDED:
        signal.signal(signum, stop)
    preexec = _die_with(os.getpid()) if sys.platform == "linux" else None
    # process_group=0: the child leads a group of its own, out of the terminal's reach.
    stop.child = subprocess.Popen(argv, env=env, process_group=0, preexec_fn=preexec)
    if stop.graceful:  # a stop asked for while the child was being started
        stop.begin()
    else:
        stop.send()
    while (returncode := stop.child.poll()) is None:
        stop.tick()
        time.sleep(0.1)
    end_tree(grace)
    return exit_status(returncode, stop_requested=stop.signal is not None)


def exit_status(returncode: int, *, stop_requested: bool) -> int:
    """The launcher's exit status for a child that ended with ``returncode`` (Popen's)."""
    # A signal ends a process either by killing it (-N) or by its own exit with 128 + N.
    signum = -returncode if returncode < 0 else returncode - 128
    if stop_requested and (returncode == 0 or signum in _FORWARDED.values()):
        return 0
    if returncode < 0:
        return 128 + signum
    if returncode == 0:
        sys.stderr.write(
            "error: the server exited with status 0 without being asked to stop (its engine "
            "probably died: see the log above); exiting with status 1\n"
        )
        return 1
    return returncode


def end_tree(grace: float) -> None:
    """End every process left below us: SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _living_descendants():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while _living_descendants():
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        else:
            return


def _living_descendants() -> set[int]:
    """Our descendants that are still running, after reaping those of our children that ended."""
    _reap_children()
    table = _process_table()
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return {pid for pid in found if table[pid][1] != "Z"}


def _reap_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process, from ``/proc``."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while we looked
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        table[int(entry.name)] = (int(ppid), state)
    return table
