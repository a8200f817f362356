"""The real plugin (routes, gate, error handlers) and vLLM's exception handlers, over a fake
engine, wired the way vLLM's ``build_app`` and ``init_app_state`` wire them."""

from __future__ import annotations

import asyncio
from argparse import Namespace
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from vllm.entrypoints.serve.exception_handling.register import init_exception_handler

from serving.core.settings import Settings
from serving.plugin import SeqGPTPlugin
from tests.api.fake_engine import FakeEngine

API_KEY = "api-test-key"


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def settings() -> Settings:
    # The web UI (Gradio) has its own tests: building it for every app here would cost ~0.5 s.
    return Settings(max_text_chars=200, max_labels=20, ui=False)


def build_app(engine: FakeEngine, settings: Settings, api_keys: list[str]) -> FastAPI:
    """A FastAPI app wired like vLLM's, with the plugin's routes and state."""
    app = FastAPI()
    plugin = SeqGPTPlugin(settings)
    plugin.attach_router(app)
    init_exception_handler(app)
    args = Namespace(log_error_stack=False, api_key=api_keys or None)
    app.state.args = args
    app.state.server = SimpleNamespace(should_exit=False)
    app.state.engine_client = engine
    asyncio.run(plugin.init_state(engine, app.state, args))
    return app


@pytest.fixture
def make_client(
    engine: FakeEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(api_keys: list[str] | None = None, **overrides: object) -> TestClient:
        monkeypatch.delenv("VLLM_API_KEY", raising=False)
        chosen = settings.model_copy(update=overrides) if overrides else settings
        app = build_app(engine, chosen, api_keys or [])
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
