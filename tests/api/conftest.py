"""The real plugin router and vLLM's real exception handlers, over a fake engine."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from vllm.entrypoints.serve.exception_handling.register import init_exception_handler

from serving.plugin import SeqGPTPlugin
from serving.service import SeqGPTService
from serving.settings import Settings
from tests.api.fake_engine import CharTokenizer, FakeEngine


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def settings() -> Settings:
    return Settings(max_text_chars=200, max_labels=20)


@pytest.fixture
def client(engine: FakeEngine, settings: Settings) -> Iterator[TestClient]:
    app = FastAPI()
    init_exception_handler(app)
    SeqGPTPlugin().attach_router(app)
    app.state.args = Namespace(log_error_stack=False)
    app.state.server = SimpleNamespace(should_exit=False)
    app.state.engine_client = engine
    app.state.seqgpt = SeqGPTService(engine, CharTokenizer(), settings)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
