"""A metrics-only key (``SEQGPT_METRICS_KEY``) for Prometheus: it opens ``GET /metrics`` and
nothing else (a 403 in the common body elsewhere, the web UI and its login included); the API
keys still open ``/metrics``; the key is never echoed by the launcher's check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from serving.contract.limits import CompletionLimits
from serving.core.settings import Settings
from serving.http.gate import Gate
from serving.http.lifecycle import Drain
from serving.process.launcher import settings_errors
from tests.api.conftest import build_app
from tests.api.fake_engine import FakeEngine

API_KEY = "full-api-key"
METRICS_KEY = "metrics-only-key-0123456789"
SCRAPER = {"Authorization": f"Bearer {METRICS_KEY}"}
FULL = {"Authorization": f"Bearer {API_KEY}"}


async def _reached(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse(f"reached {scope['method']} {scope['path']}")(scope, receive, send)


def _gate() -> TestClient:
    gate = Gate(
        _reached,
        keys=[API_KEY],
        metrics_keys=[METRICS_KEY],
        open_paths=set(),
        max_body_bytes=10_000,
        limits=CompletionLimits(max_tokens=100, n=2, logprobs=5),
        drain=Drain(timeout_s=1),
    )
    return TestClient(gate)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[TestClient]:
    """The real plugin with the UI, an API key and a metrics key (the UI costs ~0.5 s)."""
    settings = Settings(ui=True, metrics_key=METRICS_KEY)  # type: ignore[arg-type]
    app = build_app(FakeEngine(), settings, [API_KEY])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _refused(response: object, status: int) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status


@pytest.mark.parametrize("headers", [SCRAPER, FULL], ids=["metrics key", "api key"])
def test_the_metrics_key_and_the_api_key_open_metrics(headers: dict[str, str]) -> None:
    assert _gate().get("/metrics", headers=headers).text == "reached GET /metrics"


def test_the_metrics_key_only_reads_metrics() -> None:
    _refused(_gate().post("/metrics", headers=SCRAPER, content=b"x"), 403)
    _refused(_gate().get("/metrics"), 401)
    _refused(_gate().get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/classify"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/models"),
        ("GET", "/ui/"),
        ("GET", "/ui/config"),
        ("GET", "/metrics/../v1/models"),
    ],
)
def test_the_metrics_key_opens_nothing_else(server: TestClient, method: str, path: str) -> None:
    response = server.request(method, path, headers=SCRAPER, json={}, follow_redirects=False)
    _refused(response, 403)
    assert "tenant 'metrics'" in response.json()["error"]["message"]  # it says whose key it is


def test_the_metrics_key_does_not_log_into_the_ui(server: TestClient) -> None:
    response = server.post("/ui/login", data={"key": METRICS_KEY}, follow_redirects=False)
    assert response.status_code == 403  # a valid key without the ui scope
    assert response.json()["error"]["code"] == 403
    assert "set-cookie" not in response.headers


def test_the_api_key_still_reaches_the_routes(server: TestClient) -> None:
    response = server.post("/v1/classify", headers=FULL, json={"text": "x", "labels": ["a"]})
    assert response.status_code == 200, response.text


def test_a_refused_metrics_key_is_not_echoed_by_the_launcher() -> None:
    (line,) = settings_errors({"SEQGPT_METRICS_KEY": "short"})
    assert line.startswith("error: SEQGPT_METRICS_KEY: ")
    assert "short" not in line


def test_the_settings_never_show_the_metrics_key() -> None:
    settings = Settings(metrics_key=METRICS_KEY)  # type: ignore[arg-type]
    assert METRICS_KEY not in repr(settings)
