"""One real server for the whole e2e tier: vLLM's CPU backend, the tiny test model served in fp32
(``tests.servers``), the plugin, an API key. Starting vLLM costs ~30 s here, so tests share it;
``pace`` says how much slower than the reference machine it serves (``tests.servers``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtest.server import ServerProcess
from tests.servers import Pace, measure_pace, tiny_server

API_KEY = "test-key"
METRICS_KEY = "test-metrics-only-key"
MAX_TEXT_CHARS = 3000


@pytest.fixture(scope="session")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Small span budgets keep random-weight extractions short (they never emit EOS).
    env = {
        "SEQGPT_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
        "SEQGPT_MAX_LABELS": "20",
        "SEQGPT_SPAN_TOKENS_PER_LABEL": "8",
        "SEQGPT_METRICS_KEY": METRICS_KEY,  # environment only, like every key
    }
    log = tmp_path_factory.mktemp("logs") / "e2e-server.log"
    with tiny_server(tiny_model, api_key=API_KEY, env=env, log_path=log) as remote:
        yield remote


@pytest.fixture(scope="session")
def pace(server: ServerProcess) -> Pace:
    return measure_pace(server.url, {"Authorization": f"Bearer {API_KEY}"})


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
        yield client
