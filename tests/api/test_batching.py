"""A batch is checked once, not once per text (``serving.core.batching``): its labels and options
are the same for every text, so the texts run on the batch's verdict."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.core.checks import InputChecks
from serving.core.service import SeqGPTService
from tests.api.fake_engine import FakeEngine


@pytest.mark.parametrize("path", ["/v1/classify/batch", "/v1/extract/batch"])
def test_a_batch_checks_its_labels_and_options_once_and_each_text_once(
    client: TestClient, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    engine.respond = lambda _p, _s: "人物: 张"
    calls: dict[str, int] = {}

    def counted(name: str, method: Any) -> Any:
        def count(*args: Any, **kwargs: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return method(*args, **kwargs)

        return count

    monkeypatch.setattr(InputChecks, "labels", counted("labels", InputChecks.labels))
    monkeypatch.setattr(InputChecks, "text", counted("text", InputChecks.text))
    options = counted("options", SeqGPTService.check_options)
    monkeypatch.setattr(SeqGPTService, "check_options", staticmethod(options))
    texts = ["张三在北京", "李四在上海", "王五在深圳"]
    response = client.post(path, json={"texts": texts, "labels": ["人物", "地点"]})
    assert response.status_code == 200, response.text
    assert all("error" not in result for result in response.json()["results"])
    assert calls == {"labels": 1, "options": 1, "text": 3}
