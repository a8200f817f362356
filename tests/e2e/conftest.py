"""One real server for the whole e2e tier: vLLM's CPU backend, the tiny fp32 test model, the
plugin, an API key. Starting vLLM costs ~30 s here, so tests share it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import RemoteServer, make_tiny_model

API_KEY = "test-key"
MAX_TEXT_CHARS = 3000


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def server(tiny_model: Path) -> Iterator[RemoteServer]:
    # fp32 so the parity test compares like with like (vLLM's CPU default would be bf16).
    args = ["--enforce-eager", "--dtype", "float32", "--api-key", API_KEY]
    # Small span budgets keep random-weight extractions short (they never emit EOS).
    env = {
        "SEQGPT_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
        "SEQGPT_MAX_LABELS": "20",
        "SEQGPT_SPAN_TOKENS_PER_LABEL": "8",
    }
    with RemoteServer(tiny_model, args, env) as remote:
        yield remote


@pytest.fixture
def http(server: RemoteServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
        yield client
