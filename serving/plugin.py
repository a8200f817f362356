"""The vLLM endpoint plugin (entry point ``vllm.endpoint_plugins: seqgpt``).

vLLM loads it when ``VLLM_PLUGINS`` names ``seqgpt``. ``attach_router`` adds the task routes to
vLLM's own OpenAI API app; ``init_state`` (called once the engine is up, before the server
starts) reads the settings, builds the service around the server's ``EngineClient``, and
secures the whole app: it removes the routes this product does not serve, renders every error
in the common body, and puts ``serving.http.observe.Observer`` (request ids, metrics, the request
log) and ``serving.http.gate.Gate`` (drain, key, limits) in front of every request, outermost.
Last, with the UI on, it adds the UI's login form (``serving.ui.auth``) and mounts the web UI at
``/ui`` (``serving.ui.app``) behind the same gate; with it off neither route exists.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import ipaddress
import logging
import signal
from argparse import Namespace
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware

if TYPE_CHECKING:
    from starlette.types import Scope
    from vllm.engine.protocol import EngineClient

    from serving.core.errors import ServingError
    from serving.core.service import SeqGPTService
    from serving.core.settings import Settings
    from serving.core.tenancy import Registry
    from serving.http.lifecycle import Drain
    from serving.ui.auth import UiSessions

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
        # Deferred: vLLM imports this module at start-up to find plugins, before it serves.
        from serving.http.routes import router

        app.include_router(router)
        self._app = app

    async def init_state(
        self, engine_client: EngineClient | None, state: State, args: Namespace
    ) -> None:
        """Build the task service and secure the app, with settings read from the env."""
        # Deferred with the routes: only a server that loaded the plugin builds its state.
        from serving.core.ratelimits import Limiter
        from serving.core.settings import Settings
        from serving.http.lifecycle import Drain
        from serving.http.observe import AuditLog, Observation, configure_request_log, task_metrics
        from serving.ui.auth import UiSessions

        settings = self._settings or Settings()
        _log_like_vllm()
        keys = _keys(args, settings)
        if not keys and not _private(args):
            logger.warning(
                "seqgpt: no API key is set and the server listens on %s:%s: anyone who can reach "
                "it may use every route. Set VLLM_API_KEY or --api-key (SECURITY.md).",
                getattr(args, "host", None) or "0.0.0.0",
                getattr(args, "port", ""),
            )
        registry = _registry(keys, settings)  # TenantsFileError: a bad file stops the server
        state.seqgpt_registry = registry
        state.seqgpt_limiter = Limiter(_api_processes(args))  # each process its share
        ui_sessions = (
            UiSessions(keys, folder=settings.ui_session_dir, registry=registry)
            if settings.ui
            else None
        )
        if ui_sessions is not None and settings.ui_session_dir is None and _api_processes(args) > 1:
            logger.warning(
                "seqgpt: SEQGPT_UI_SESSION_DIR is not set: a logout from the web UI holds only in "
                "the API process that answered it, not in the %d others. Set it to a private "
                "folder (seqgpt-serve serve does).",
                _api_processes(args) - 1,
            )
        state.seqgpt_ui_sessions = ui_sessions
        drain = Drain(settings.drain_timeout_s)
        audit = None
        if settings.audit_log is not None:
            audit = AuditLog(
                settings.audit_log, settings.audit_log_max_bytes, settings.audit_log_backups
            )
            atexit.register(audit.close)
        state.seqgpt_drain = drain
        state.seqgpt_observation = Observation(task_metrics(), audit)
        if settings.request_log:
            configure_request_log()
        if self._app is not None:
            _secure(self._app, settings, keys, drain, ui_sessions, state)
        if engine_client is None:  # vLLM's render-only server: no engine, no tasks, no UI
            return
        # The service imports vLLM's sampling code: only where an engine runs.
        from serving.core.service import SeqGPTService

        processes = _api_processes(args)  # the bound is the server's: each process its share
        state.seqgpt = SeqGPTService.for_engine(engine_client, settings, processes=processes)
        if self._app is not None and ui_sessions is not None:
            _mount_ui(self._app, state, settings, login=ui_sessions.required)
        # The launcher answers the SIGTERM it gets with SIGUSR1 once this handler is in place (it
        # reads the signals the process handles): drain, then stop.
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, drain.start, state)


def _shed(state: State, scope: Scope) -> ServingError | None:
    """The refusal a task request gets now whatever its body (the service's bound has no room
    for its tenant and level); a bad priority header is left to the route's 400."""
    # Where a gate runs, the routes (and vLLM) are loaded already.
    from serving.core.errors import InvalidInputError
    from serving.http.routes import BATCH_PATHS, TASK_PATHS
    from serving.http.who import who_of

    service: SeqGPTService | None = getattr(state, "seqgpt", None)
    path = scope["path"].removeprefix(scope.get("root_path", ""))  # as the gate reads it
    if service is None or path not in TASK_PATHS:
        return None
    try:
        who = who_of(scope, batch_route=path in BATCH_PATHS)
    except InvalidInputError:
        return None
    return service.refusal_now(who)


def _log_like_vllm() -> None:
    """Our modules' log lines (``serving.*``) go where vLLM's go, in its format."""
    ours, vllms = logging.getLogger("serving"), logging.getLogger("vllm")
    if not ours.handlers and vllms.handlers:
        for handler in vllms.handlers:
            ours.addHandler(handler)
        ours.setLevel(vllms.level or logging.INFO)
        ours.propagate = False


def _private(args: Namespace) -> bool:
    """Whether the server listens where only this machine reaches it (loopback, a Unix socket)."""
    if getattr(args, "uds", None):
        return True
    host = str(getattr(args, "host", None) or "")  # none: every interface
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # every interface, or a host name that may resolve to any of them
        return False


def _api_processes(args: Namespace) -> int:
    """How many API server processes vLLM runs (``--api-server-count``; unset: one)."""
    count = getattr(args, "api_server_count", None)
    return count if isinstance(count, int) and count > 0 else 1


def _keys(args: Namespace, settings: Settings) -> list[str]:
    """Every API key the server accepts: --api-key, VLLM_API_KEY, SEQGPT_API_KEYS."""
    # vLLM's envs read the environment at import: only once the server runs.
    from vllm import envs

    keys = [*(getattr(args, "api_key", None) or []), envs.VLLM_API_KEY, *settings.api_keys]
    return list(dict.fromkeys(key for key in keys if key))


def _registry(keys: list[str], settings: Settings) -> Registry:
    """The server's tenants: its plain keys, its metrics key, the tenants file's."""
    # Deferred with the routes: only a server that loaded the plugin reads its tenants.
    from serving.core.tenancy import Registry

    metrics = [settings.metrics_key.get_secret_value()] if settings.metrics_key else []
    return Registry(keys, metrics, settings.tenants_file)


def _mount_ui(app: FastAPI, state: State, settings: Settings, *, login: bool) -> None:
    """The web UI at /ui, calling this server's service (imports Gradio: a few seconds)."""
    # Gradio takes seconds to import: only when the UI is on.
    from serving.contract.limits import CompletionLimits
    from serving.http.status import server_status
    from serving.ui.app import mount_ui
    from serving.ui.auth import login_router
    from serving.ui.backend import Backend

    app.include_router(login_router)  # ahead of the mount, which would answer its path
    limits = CompletionLimits.from_settings(settings)
    # The status the UI shows is the route's own (the UI does not import the HTTP surface).
    backend = Backend(state, limits, functools.partial(server_status, state))
    removed = mount_ui(app, backend, max_completion_tokens=limits.max_tokens, logout=login)
    logger.info("seqgpt: web UI at /ui (%d Gradio routes not served)", len(removed))


def _secure(
    app: FastAPI,
    settings: Settings,
    keys: list[str],
    drain: Drain,
    ui_sessions: UiSessions | None,
    state: State,
) -> None:
    """Prune the routes, install the error handlers and the gate in front of everything."""
    # vLLM's middleware: only once the server runs.
    from vllm.entrypoints.serve.middleware.authenticate import AuthenticationMiddleware

    from serving.contract.limits import CompletionLimits
    from serving.http.error_handlers import install_error_handlers
    from serving.http.gate import Gate
    from serving.http.observe import Observer, task_metrics
    from serving.http.routes import router
    from serving.http.surface import open_paths, prune_routes
    from serving.ui.auth import LOGIN_ROUTES, login_router

    own = [*router.routes, *(login_router.routes if settings.ui else [])]
    own_paths = {route.path for route in own}  # type: ignore[attr-defined]
    removed = prune_routes(app, own_paths, settings.enable_routes)
    logger.info("seqgpt: not serving %d vLLM routes (SEQGPT_ENABLE_ROUTES)", len(removed))
    gate = functools.partial(
        Gate,
        keys=keys,
        open_paths=open_paths(settings.public_metrics, also=LOGIN_ROUTES if settings.ui else ()),
        max_body_bytes=settings.max_body_bytes,
        limits=CompletionLimits.from_settings(settings),
        drain=drain,
        ui=ui_sessions,
        linger_s=settings.body_linger_s,
        body_timeout_s=settings.body_timeout_s,
        shed=functools.partial(_shed, app.state),
        registry=state.seqgpt_registry,
        limiter=state.seqgpt_limiter,
    )
    observer = functools.partial(
        Observer, metrics=task_metrics(), drain=drain, log=settings.request_log
    )
    # For a middleware stack built from here on: the handlers, every tenant's key for vLLM's own
    # check (on /v1 only, kept as a second lock: it asks the same registry), and the gate,
    # outermost.
    install_error_handlers(app)
    registry = state.seqgpt_registry
    app.user_middleware[:] = [
        Middleware(_second_lock, tokens=keys, registry=registry)
        if m.cls is AuthenticationMiddleware  # type: ignore[comparison-overlap]
        else m
        for m in app.user_middleware
    ]
    app.user_middleware[:0] = [Middleware(observer), Middleware(gate)]
    if app.middleware_stack is None:
        return
    # vLLM's build_app has already built the stack (its SageMaker bootstrap does). Building it
    # again would re-create vLLM's Prometheus middleware, whose second instance records
    # nothing, so the built stack is completed in place instead.
    for layer in _layers(app.middleware_stack):
        if isinstance(layer, ExceptionMiddleware):
            install_error_handlers(layer)
        elif isinstance(layer, AuthenticationMiddleware):
            layer.verify_token = functools.partial(_known_key, registry)  # type: ignore[method-assign]
    app.middleware_stack = observer(gate(app.middleware_stack))


def _known_key(registry: Registry, headers: Any) -> bool:
    """Whether the request's bearer key is any tenant's (vLLM's own check, the second lock)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and registry.lookup(token.strip()) is not None


def _second_lock(app: Any, *, tokens: list[str], registry: Registry) -> Any:
    """vLLM's ``AuthenticationMiddleware`` asking the tenants registry, not a fixed key list."""
    # vLLM's middleware: only once the server runs.
    from vllm.entrypoints.serve.middleware.authenticate import AuthenticationMiddleware

    lock = AuthenticationMiddleware(app, tokens)
    lock.verify_token = functools.partial(_known_key, registry)  # type: ignore[method-assign]
    return lock


def _layers(stack: Any) -> Iterator[Any]:
    """Every layer of a built middleware stack, outermost first, down to the router."""
    layer = stack
    while layer is not None:
        yield layer
        layer = getattr(layer, "app", None)
