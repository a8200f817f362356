"""The server's status in one small document: health, model, device, dtype, CPU and load.

This is the wire model alone, so that the Python client reads it without loading the server's
libraries; ``serving.http.status`` fills it. With ``--api-server-count N > 1`` each API process
answers for itself: its own prompts in flight (per tenant and per level, interactive or batch) and
its share of the bound, and its process id, so one can tell which of them answered.

``GET /v1/status`` serves it (behind the key); ``seqgpt-serve status`` prints it as one line and
the web UI shows it as a status light.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["LevelPrompts", "StatusResponse"]


class LevelPrompts(BaseModel):
    """Task prompts in flight at each level: interactive work, and batch work (the ``/batch``
    routes, ``X-SeqGPT-Priority: batch``, a batch tenant's requests)."""

    interactive: int = 0
    batch: int = 0


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
    inflight_by_level: LevelPrompts = Field(
        default_factory=LevelPrompts,
        description="inflight_prompts at each level (interactive, batch).",
    )
    inflight_by_tenant: dict[str, LevelPrompts] = Field(
        default_factory=dict,
        description="inflight_prompts per tenant holding any, at each level.",
    )
    batch_prompts_waiting: int = Field(
        default=0,
        description="Batch prompts admitted and waiting in the API process for a turn in the "
        "engine (batch work yields to interactive work).",
    )
    draining: bool = Field(description="Shutting down: new requests get 503.")
    api_processes: int = Field(default=1, description="API server processes (--api-server-count).")
    pid: int = Field(default=0, description="The API server process that answered.")
