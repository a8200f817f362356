"""``python -m loadtest.latency`` takes ``--api-key`` and ``--port`` like the other load tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from loadtest import latency


class FakeServer:
    """Stands in for ``ServerProcess``: records how it was asked to start."""

    started: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: Path, **kwargs: Any) -> None:
        FakeServer.started.clear()
        FakeServer.started.update(model=model, **kwargs)
        self.url = f"http://127.0.0.1:{kwargs.get('port') or 8100}"

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(latency, "ServerProcess", FakeServer)
    monkeypatch.setattr(latency, "ensure_model", lambda directory, _size: directory)
    monkeypatch.setattr(latency, "measure", lambda *args: calls.append(args) or {"x": 0.1})
    monkeypatch.delenv("LOCUST_API_KEY", raising=False)
    return calls


def test_the_started_server_gets_the_port_and_key(measured: list[tuple[Any, ...]]) -> None:
    latency.main(["--port", "8123", "--api-key", "k", "--repeats", "2"])
    assert (FakeServer.started["port"], FakeServer.started["api_key"]) == (8123, "k")
    assert measured == [("http://127.0.0.1:8123", 2, "k")]


def test_a_running_server_gets_the_key(measured: list[tuple[Any, ...]]) -> None:
    latency.main(["--url", "http://h:1", "--api-key", "k"])
    assert measured == [("http://h:1", 7, "k")]


def test_the_key_defaults_to_locust_api_key(
    measured: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCUST_API_KEY", "from-env")
    latency.main(["--url", "http://h:1"])
    assert measured == [("http://h:1", 7, "from-env")]
