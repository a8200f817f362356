"""The web UI shows the API's answers and builds nothing of its own: its example prompts are the
prompts the task routes send, and a free extraction prompt's fields are the answer ``/v1/extract``
gives for its text and labels (over the fake engine; the page itself is in ``tests/ui``)."""

from __future__ import annotations

import asyncio
import functools
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.contract.limits import CompletionLimits
from serving.http.status import server_status
from serving.ui.backend import Backend
from serving.ui.tabs import PROMPT_EXAMPLES
from tests.api.fake_engine import FakeCompletions, FakeEngine

TEXT = "张三于2023年5月1日在北京加入阿里巴巴。"
ANSWER = "人物: 张三\n地点: 北京\n组织机构: 阿里巴巴\n"
LIMITS = CompletionLimits(max_tokens=64, n=1, logprobs=0)


def _backend(client: TestClient, engine: FakeEngine) -> Backend:
    state = client.app.state  # type: ignore[attr-defined]
    completions = FakeCompletions(engine)
    return Backend(
        SimpleNamespace(seqgpt=state.seqgpt, openai_serving_completion=completions),
        LIMITS,
        functools.partial(server_status, state),
    )


@pytest.mark.parametrize(
    ("example", "path", "body"),
    [
        (PROMPT_EXAMPLES[0][0], "/v1/extract", {"text": TEXT, "labels": "人物,地点,机构"}),
        (
            PROMPT_EXAMPLES[1][0],
            "/v1/classify",
            {"text": "今天上证指数收涨1.2%，券商板块领涨。", "labels": "财经,体育,娱乐"},
        ),
    ],
    ids=["extract", "classify"],
)
def test_the_free_prompt_examples_are_the_prompts_the_task_api_sends(
    client: TestClient, example: str, path: str, body: dict[str, Any]
) -> None:
    answer = client.post(path, json={**body, "return_prompts": True}).json()
    assert answer["prompts"] == [example]


@pytest.mark.parametrize("finish_reason", ["stop", "length"])
def test_a_free_extraction_prompts_fields_are_the_answer_extract_gives(
    client: TestClient, engine: FakeEngine, finish_reason: str
) -> None:
    engine.respond = lambda _p, _s: ANSWER if finish_reason == "stop" else ANSWER[:-3]
    engine.finish_reason = finish_reason
    labels = ["人物", "地点", "组织机构"]
    prompt = client.post(
        "/v1/extract", json={"text": TEXT, "labels": labels, "return_prompts": True}
    ).json()["prompts"][0]
    completion = asyncio.run(_backend(client, engine).complete(prompt, 64))
    api = client.post("/v1/extract", json={"text": TEXT, "labels": labels}).json()
    assert completion.fields is not None
    shown = completion.fields.model_dump(mode="json", exclude_unset=True)
    assert (shown["fields"], shown["ungrounded"]) == (api["fields"], api["ungrounded"])
    assert shown["truncated"] is (finish_reason == "length")
    assert [s["text"] for s in api["fields"]["组织机构"]] == (
        [] if api["truncated"] else ["阿里巴巴"]
    )


def test_a_free_prompt_that_is_no_extraction_has_no_fields(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "财经"
    completion = asyncio.run(_backend(client, engine).complete(PROMPT_EXAMPLES[1][0], 8))
    assert completion.text == "财经"
    assert completion.fields is None
