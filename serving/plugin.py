"""The vLLM endpoint plugin (entry point ``vllm.endpoint_plugins: seqgpt``).

vLLM loads it when ``VLLM_PLUGINS`` names ``seqgpt``: ``attach_router`` adds the task routes to
vLLM's own OpenAI API app (so ``--api-key``, CORS, metrics and error handlers apply to them),
and ``init_state`` builds the service around the server's ``EngineClient``. Settings are read
here, once, at startup.
"""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import State

__all__ = ["SeqGPTPlugin"]


class SeqGPTPlugin:
    """Adds /v1/classify and /v1/extract to vLLM's OpenAI API server."""

    name = "seqgpt"
    required_tasks: tuple[str, ...] | None = ("generate",)

    def attach_router(self, app: FastAPI) -> None:
        """Register the task routes on vLLM's app."""
        from serving.routes import router

        app.include_router(router)

    async def init_state(
        self,
        engine_client: Any,
        state: State,
        args: Namespace,  # noqa: ARG002 (protocol)
    ) -> None:
        """Build the task service around the engine client, with settings read from the env."""
        from serving.service import SeqGPTService
        from serving.settings import Settings

        if engine_client is None:  # vLLM's render-only server: no engine, no tasks
            return
        tokenizer = engine_client.renderer.get_tokenizer()
        state.seqgpt = SeqGPTService(engine_client, tokenizer, Settings())
