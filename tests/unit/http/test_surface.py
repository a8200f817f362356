"""Which routes are served and which are open: the allowlist and its settings."""

from __future__ import annotations

from fastapi import FastAPI

from serving.http.surface import ALWAYS_OPEN, open_paths, prune_routes
from serving.ui.auth import LOGIN_PATH, LOGIN_ROUTES


def _app() -> FastAPI:
    app = FastAPI()
    for path in ("/v1/completions", "/v1/classify", "/scale_elastic_ep", "/reset_prefix_cache"):
        app.post(path)(lambda: None)
    return app


def _paths(app: FastAPI) -> set[str]:
    return {route.path for route in app.routes}  # type: ignore[attr-defined]


PROBES = {("GET", "/health"), ("GET", "/ping"), ("POST", "/ping")}
LOGIN = {("GET", "/ui/login"), ("POST", "/ui/login")}


def test_only_the_probes_and_the_ui_login_are_open_unless_metrics_are_made_public() -> None:
    """What is open is a method on a path: ``PUT /ui/login`` is not."""
    assert PROBES == ALWAYS_OPEN
    assert LOGIN_PATH == "/ui/login"
    assert LOGIN == LOGIN_ROUTES  # what the plugin passes while the UI is on
    assert open_paths(public_metrics=False, also=LOGIN_ROUTES) == PROBES | LOGIN
    assert open_paths(True, LOGIN_ROUTES) == PROBES | LOGIN | {("GET", "/metrics")}
    assert open_paths(public_metrics=False) == ALWAYS_OPEN


def test_routes_outside_the_allowlist_are_removed() -> None:
    app = _app()
    removed = prune_routes(app, {"/v1/classify"}, [])
    assert sorted(removed) == ["/reset_prefix_cache", "/scale_elastic_ep"]
    assert {"/v1/completions", "/v1/classify"} <= _paths(app)
    assert not {"/reset_prefix_cache", "/scale_elastic_ep"} & _paths(app)


def test_enable_routes_keeps_the_named_routes_or_all() -> None:
    app = _app()
    assert prune_routes(app, {"/v1/classify"}, ["/scale_elastic_ep"]) == ["/reset_prefix_cache"]
    app = _app()
    assert prune_routes(app, set(), ["*"]) == []
    assert "/reset_prefix_cache" in _paths(app)
