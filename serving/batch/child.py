"""A ``--model`` batch runs in a child process with a process group of its own.

vLLM's engine core and its worker each handle SIGINT themselves. A terminal's Ctrl-C goes to
the whole foreground process group, so they would die mid-step beside the batch (and log a
page of errors) while the batch is stopping them in order. So the command stays a small parent
that starts ``python -m serving.batch.child`` in a group of its own, out of the
terminal's reach, hands it the job on its stdin (a schema may be bigger than the 128 KiB Linux
allows one argument), forwards SIGINT and SIGTERM (SIGHUP as SIGTERM) to it alone, and exits with
its status. The child gets SIGTERM if the parent dies (``PR_SET_PDEATHSIG``), and a stop
signal makes it stop cleanly like any other.

Nothing of vLLM is imported in the parent.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from serving.process.supervisor import die_with_parent

__all__ = ["engine_problems", "run_in_child"]

_FORWARDED = {
    signal.SIGINT: signal.SIGINT,
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGHUP: signal.SIGTERM,
}


def engine_problems(model: str, environ: Mapping[str, str]) -> list[str]:
    """One ``error: ...`` line per reason the engine cannot start: bad ``SEQGPT_*`` settings, a
    model vLLM could not load (checked in a second, before vLLM starts)."""
    # pydantic-settings: only in the child, which checks the server's settings.
    from serving.process.launcher import settings_errors
    from serving.process.modelcheck import model_problem

    problem = model_problem(model)
    # A copy: settings_errors swaps os.environ for the mapping it is given while it checks.
    return [*settings_errors(dict(environ)), *([problem] if problem else [])]


def run_in_child(job: dict[str, Any], model: str, flags: Mapping[str, Any]) -> int:
    """Run the batch ``job`` (``BatchJob``'s fields) on vLLM in a child; return its status."""
    spec = json.dumps({"job": job, "model": model, "flags": dict(flags)}, ensure_ascii=False)
    command = [sys.executable, "-m", "serving.batch.child"]
    parent = os.getpid()

    preexec = functools.partial(die_with_parent, parent) if sys.platform == "linux" else None
    child = subprocess.Popen(command, process_group=0, preexec_fn=preexec, stdin=subprocess.PIPE)

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(_FORWARDED[signal.Signals(signum)])

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    with contextlib.suppress(BrokenPipeError), child.stdin as pipe:  # type: ignore[union-attr]
        pipe.write(spec.encode("utf-8"))  # a child that died first: its status says why
    status = child.wait()
    return 128 - status if status < 0 else status  # killed by signal N: 128 + N


def _main(spec_text: str) -> int:
    """The child: run the batch with the in-process engine (``spec_text``: its stdin)."""
    # vLLM: loaded only in the child process, never by the parent CLI.
    from serving.batch.engine import engine_source
    from serving.batch.job import BatchJob, run_batch

    # SIGTERM stops the run as SIGINT does, also before the rows start (KeyboardInterrupt).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    spec = json.loads(spec_text)
    job = spec["job"]
    job = BatchJob(**{**job, "input": Path(job["input"]), "output": Path(job["output"])})
    return run_batch(job, engine_source(spec["model"], spec["flags"]))


if __name__ == "__main__":
    sys.exit(_main(sys.stdin.read()))
