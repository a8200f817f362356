"""A vLLM general plugin: under ``seqgpt-serve serve``, the processes vLLM starts end with
their parent.

vLLM loads general plugins in each of its processes: the API server, its engine core and the
engine's workers. The launcher makes the API server die with it (``serving.process.supervisor``);
this does the same for the processes vLLM starts below it, so a server killed outright (SIGKILL of
the launcher and the API server together) leaves no engine core or worker behind holding gigabytes
of memory: each gets SIGTERM, which vLLM handles by shutting down.

Active only in processes started by ``multiprocessing`` under the launcher (which sets
``SEQGPT_LIFELINE=1`` in the server's environment), so other programs that use vLLM in this
environment are untouched.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

from serving.process.supervisor import die_with_parent

__all__ = ["LIFELINE", "register"]

LIFELINE = "SEQGPT_LIFELINE"


def register() -> None:
    """The plugin's entry point (``vllm.general_plugins``); vLLM calls it once per process."""
    parent = multiprocessing.parent_process()
    if os.environ.get(LIFELINE) == "1" and parent is not None and sys.platform == "linux":
        die_with_parent(parent.pid)  # type: ignore[arg-type]
