"""Which routes of vLLM's app this product serves, and which of them are open without a key.

An allowlist, so a route vLLM adds in a later version is not served until someone decides it
should be: this product's own routes, plus the vLLM routes its users need (completions, chat,
models, tokenize, health, metrics, the API docs, SageMaker's ``/invocations`` and ``/ping``).
Everything else (elastic scaling, profiling, cache resets, sleep/wake, raw token generation,
the Responses and Anthropic APIs …) is removed from the app unless ``SEQGPT_ENABLE_ROUTES``
names it (``["*"]``: everything vLLM registered).

Open without a key: the probes, and the web UI's login form (``serving.ui.auth``, named by the
plugin while the UI is on), which serves a form and checks a key, nothing else. What is open is a
(method, path) pair: ``PUT /ui/login`` is not open, and the gate answers it 405 (``Allow``).
Everything else under ``/ui`` takes the key or the UI's session cookie; Gradio's routes there are
pruned to the page's own (``serving.ui.app``).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

__all__ = [
    "ALWAYS_OPEN",
    "SERVED_VLLM_PATHS",
    "OpenRoute",
    "open_paths",
    "prune_routes",
    "route_path",
]

SERVED_VLLM_PATHS = frozenset(
    {
        "/health",
        "/ping",
        "/metrics",
        "/version",
        "/load",
        "/v1/models",
        "/v1/completions",
        "/v1/chat/completions",
        "/tokenize",
        "/detokenize",
        "/invocations",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
)
"""vLLM's routes that are served (behind the key unless open)."""

OpenRoute = tuple[str, str]
"""A (method, path) a request may reach without the API key."""

ALWAYS_OPEN: frozenset[OpenRoute] = frozenset(
    {("GET", "/health"), ("GET", "/ping"), ("POST", "/ping")}  # vLLM's methods (SageMaker's POST)
)
"""Probes for load balancers and Kubernetes: served without the key."""


def open_paths(public_metrics: bool, also: Iterable[OpenRoute] = ()) -> frozenset[OpenRoute]:
    """The (method, path) pairs a request may reach without the API key: the probes, ``also``
    (the plugin passes the web UI's login form while the UI is on), and the metrics if public."""
    routes = ALWAYS_OPEN | set(also)
    return routes | {("GET", "/metrics")} if public_metrics else routes


def route_path(route: BaseRoute) -> str | None:
    """The path template of a route or mount, if it has one."""
    return route.path if isinstance(route, Route | Mount) else getattr(route, "path", None)


def prune_routes(app: ASGIApp, own_paths: Iterable[str], enabled: Iterable[str]) -> list[str]:
    """Remove every route not served from ``app``'s router; return the removed paths."""
    enabled = set(enabled)
    if "*" in enabled:
        return []
    served = SERVED_VLLM_PATHS | set(own_paths) | enabled
    router = app.router  # type: ignore[attr-defined]
    kept: list[BaseRoute] = []
    removed: list[str] = []
    for route in router.routes:
        path = route_path(route)
        if path is None or path in served:
            kept.append(route)
        else:
            removed.append(path)
    router.routes[:] = kept
    return removed
