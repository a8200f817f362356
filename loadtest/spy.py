"""py-spy around a block of a benchmark: where a server process spends its time while the block
runs (Python frames only, in py-spy's raw format: one ``stack count`` line per distinct stack)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["py_spy"]


@contextlib.contextmanager
def py_spy(pid: int, out: Path, rate: int, *, idle: bool = False) -> Iterator[Path]:
    """Sample process ``pid`` ``rate`` times a second into ``out`` while the block runs, without
    pausing it (``--nonblocking``); ``idle`` keeps the samples of threads that wait."""
    spy = subprocess.Popen(
        [
            *(str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid)),
            *("--rate", str(rate), "--format", "raw", "--output", str(out)),
            *(["--idle"] if idle else []),
            *("--nonblocking", "--duration", "600"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    try:
        yield out
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        spy.wait(timeout=60)
