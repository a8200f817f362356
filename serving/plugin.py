"""The vLLM endpoint plugin (entry point ``vllm.endpoint_plugins: seqgpt``).

vLLM loads it when ``VLLM_PLUGINS`` names ``seqgpt``. ``attach_router`` adds the task routes to
vLLM's own OpenAI API app; ``init_state`` (called once the engine is up, before the server
starts) reads the settings, builds the service around the server's ``EngineClient``, and
secures the whole app: it removes the routes this product does not serve, renders every error
in the common body, and puts ``serving.gate.Gate`` in front of every request. Starlette builds
the middleware stack on the first request, so a middleware added here is the outermost.
"""

from __future__ import annotations

import logging
import math
from argparse import Namespace
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.datastructures import State

if TYPE_CHECKING:
    from serving.settings import Settings

__all__ = ["SeqGPTPlugin"]

logger = logging.getLogger(__name__)


class SeqGPTPlugin:
    """Adds /v1/classify and /v1/extract to vLLM's OpenAI API server, and guards the server."""

    name = "seqgpt"
    required_tasks: tuple[str, ...] | None = ("generate",)

    def __init__(self, settings: Settings | None = None) -> None:
        # vLLM calls the factory with no argument: settings are then read at init_state.
        self._settings = settings
        self._app: FastAPI | None = None

    def attach_router(self, app: FastAPI) -> None:
        """Register the task routes on vLLM's app."""
        from serving.routes import router

        app.include_router(router)
        self._app = app

    async def init_state(self, engine_client: Any, state: State, args: Namespace) -> None:
        """Build the task service and secure the app, with settings read from the env."""
        from serving.settings import Settings

        settings = self._settings or Settings()
        if self._app is not None:
            _secure(self._app, settings, args)
        if engine_client is None:  # vLLM's render-only server: no engine, no tasks
            return
        state.seqgpt = _service(engine_client, settings)


def _service(engine_client: Any, settings: Settings) -> Any:
    from serving.service import SeqGPTService

    max_seqs = engine_client.vllm_config.scheduler_config.max_num_seqs
    max_inflight = settings.max_inflight or 2 * max_seqs
    largest_request = math.ceil(settings.max_labels / settings.chunk_size)
    if max_inflight < largest_request:
        raise ValueError(
            f"SEQGPT_MAX_INFLIGHT={max_inflight} is below the {largest_request} prompts of one "
            "request with SEQGPT_MAX_LABELS labels: raise it or lower SEQGPT_MAX_LABELS."
        )
    return SeqGPTService(
        engine_client,
        engine_client.renderer.get_tokenizer(),
        settings,
        max_model_len=engine_client.model_config.max_model_len,
        max_inflight=max_inflight,
    )


def _secure(app: FastAPI, settings: Settings, args: Namespace) -> None:
    """Prune the routes, install the error handlers and the gate."""
    from vllm import envs
    from vllm.entrypoints.serve.middleware.authenticate import AuthenticationMiddleware

    from serving.errors import install_error_handlers
    from serving.gate import CompletionLimits, Gate
    from serving.routes import router
    from serving.surface import open_paths, prune_routes

    removed = prune_routes(app, {r.path for r in router.routes}, settings.enable_routes)  # type: ignore[attr-defined]
    logger.info("seqgpt: not serving %d vLLM routes (SEQGPT_ENABLE_ROUTES)", len(removed))
    install_error_handlers(app)
    keys = [*(getattr(args, "api_key", None) or []), envs.VLLM_API_KEY, *settings.api_keys]
    # The gate checks every key on every path; vLLM's middleware would accept only its own key.
    app.user_middleware[:] = [
        m
        for m in app.user_middleware
        if m.cls is not AuthenticationMiddleware  # type: ignore[comparison-overlap]
    ]
    limits = CompletionLimits(
        max_tokens=settings.max_completion_tokens,
        n=settings.max_completion_n,
        logprobs=settings.max_logprobs,
    )
    app.add_middleware(
        Gate,
        keys=[key for key in keys if key],
        open_paths=open_paths(settings.public_metrics),
        max_body_bytes=settings.max_body_bytes,
        limits=limits,
    )
