"""The status document filled in a server: ``GET /v1/status`` and the web UI's status light.

The engine's health, dtype and queue (vLLM's own gauges, from this process's Prometheus
registry), the CPU, and this API process's prompts in flight (per tenant and level), its share
of the bound and whether it drains. The document itself is
``serving.contract.status.StatusResponse``; the plugin hands the web UI this function, as it
hands the gate the UI's session check.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import REGISTRY

from serving.contract.status import LevelPrompts, StatusResponse

__all__ = ["server_status"]


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
    holding = service.holding()
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
        inflight_by_level=LevelPrompts(
            **{level: sum(t[level] for t in holding.values()) for level in ("interactive", "batch")}
        ),
        inflight_by_tenant={name: LevelPrompts(**levels) for name, levels in holding.items()},
        batch_prompts_waiting=service.batch_turns.waiting,
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
