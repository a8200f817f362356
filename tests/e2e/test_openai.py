"""vLLM's own OpenAI API, beside the task endpoints, through the real ``openai`` client."""

from __future__ import annotations

import httpx
import openai
import pytest

from loadtest.server import ServerProcess
from prompts import build_classify_prompt

from .conftest import API_KEY

PROMPT = build_classify_prompt("今天上证指数大涨", ["财经", "体育"])


@pytest.fixture
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY)


def test_models_lists_the_served_name(client: openai.OpenAI) -> None:
    assert "seqgpt" in [model.id for model in client.models.list()]


def test_completion_is_greedy_by_default(client: openai.OpenAI) -> None:
    # No temperature sent: the server's default must be greedy, so two calls agree.
    first = client.completions.create(model="seqgpt", prompt=PROMPT, max_tokens=8)
    second = client.completions.create(model="seqgpt", prompt=PROMPT, max_tokens=8)
    assert first.choices[0].text == second.choices[0].text
    assert first.usage is not None
    assert first.usage.completion_tokens == 8


def test_streaming_completion_matches_the_plain_one(client: openai.OpenAI) -> None:
    plain = client.completions.create(model="seqgpt", prompt=PROMPT, max_tokens=8, temperature=0)
    stream = client.completions.create(
        model="seqgpt", prompt=PROMPT, max_tokens=8, temperature=0, stream=True
    )
    chunks = [chunk.choices[0].text for chunk in stream if chunk.choices]
    assert len(chunks) > 1
    assert "".join(chunks) == plain.choices[0].text


def test_wrong_key_is_rejected(server: ServerProcess) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_tokenize_and_metrics_are_served_beside_the_plugin(http: httpx.Client) -> None:
    tokens = http.post("/tokenize", json={"model": "seqgpt", "prompt": PROMPT}).json()
    assert tokens["count"] == len(tokens["tokens"]) > 0
    http.post("/v1/classify", json={"text": "今天上证指数大涨", "labels": ["财经", "体育"]})
    metrics = http.get("/metrics")
    assert metrics.status_code == 200
    assert "vllm:request_success_total" in metrics.text
    assert 'handler="/v1/classify"' in metrics.text


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": PROMPT}],
        [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "ignored: an earlier turn"},
            {"role": "assistant", "content": "ignored"},
            {"role": "user", "content": PROMPT},
        ],
    ],
    ids=["one-message", "conversation"],
)
def test_chat_completion_answers_a_seqgpt_prompt_token_for_token_as_completions(
    client: openai.OpenAI, messages: list[dict[str, str]]
) -> None:
    token_ids = {"return_token_ids": True}
    chat = client.chat.completions.create(
        model="seqgpt",
        messages=messages,
        max_tokens=16,
        extra_body=token_ids,  # type: ignore[arg-type]
    )
    plain = client.completions.create(
        model="seqgpt", prompt=PROMPT, max_tokens=16, extra_body=token_ids
    )
    chat_choice, plain_choice = chat.choices[0], plain.choices[0]
    assert len(plain_choice.token_ids) == 16  # type: ignore[attr-defined]
    assert chat_choice.token_ids == plain_choice.token_ids  # type: ignore[attr-defined]
    assert plain_choice.prompt_token_ids  # type: ignore[attr-defined]
    assert chat.prompt_token_ids == plain_choice.prompt_token_ids  # type: ignore[attr-defined]
    assert chat_choice.message.content == plain_choice.text
