"""The server's status in one small document: health, model, device, dtype, CPU and load.

With ``--api-server-count N > 1`` each API process answers for itself: its own prompts in flight
and its share of the bound, and its process id, so one can tell which of them answered.

``GET /v1/status`` serves it (behind the key); ``seqgpt-serve status`` prints it as one line and
the web UI shows it as a status light.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import REGISTRY
from pydantic import BaseModel, Field

__all__ = ["StatusResponse", "server_status"]


class StatusResponse(BaseModel):
    """Body of ``GET /v1/status``."""

    healthy: bool = Field(description="The engine answers its health check.")
    model: str = Field(description="The served model name.")
    device: str = Field(description='Where the engine runs: "cpu", "cuda", …')
    dtype: str = Field(description='What the engine computes in: "float32", "bfloat16", …')
    cpu: str = Field(
        description="This machine's CPU as torch sees it: architecture, torch's kernel set and "
        'its native bf16 instructions, e.g. "x86_64 AVX2, no native bf16".'
    )
    running: int = Field(description="Requests the engine is running (all routes).")
    waiting: int = Field(description="Requests waiting in the engine's queue (all routes).")
    inflight_prompts: int = Field(description="Task prompts admitted and not finished.")
    max_inflight_prompts: int = Field(
        description="SEQGPT_MAX_INFLIGHT in force (in this API process: its share of it)."
    )
    draining: bool = Field(description="Shutting down: new requests get 503.")
    api_processes: int = Field(default=1, description="API server processes (--api-server-count).")
    pid: int = Field(default=0, description="The API server process that answered.")


async def server_status(state: Any) -> StatusResponse:
    """The status of the server whose app state is ``state``."""
    # vLLM: only in a server, where it is loaded already.
    from vllm.platforms import current_platform

    from serving.core.cpu import cpu_facts

    engine = state.engine_client
    try:
        await engine.check_health()
        healthy = not engine.errored
    except Exception:  # the engine is dead or unreachable: exactly what this reports
        healthy = False
    names = getattr(state.args, "served_model_name", None) or [getattr(state.args, "model", "")]
    service = state.seqgpt
    return StatusResponse(
        healthy=healthy,
        model=str(names[0]),
        device=str(current_platform.device_type or "unknown"),
        # The engine's own: true whatever chose it (the launcher, --dtype, vLLM's auto).
        dtype=str(engine.model_config.dtype).removeprefix("torch."),
        cpu=str(cpu_facts()),
        running=_gauge("vllm:num_requests_running"),
        waiting=_gauge("vllm:num_requests_waiting"),
        inflight_prompts=service.inflight,
        max_inflight_prompts=service.max_inflight,
        draining=state.seqgpt_drain.draining,
        api_processes=getattr(state.args, "api_server_count", None) or 1,
        pid=os.getpid(),
    )


def _gauge(name: str) -> int:
    """A vLLM gauge summed over its label sets (engines), from this process's registry."""
    return int(
        sum(
            sample.value
            for family in REGISTRY.collect()
            for sample in family.samples
            if sample.name == name
        )
    )
