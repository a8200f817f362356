"""The Python client (``serving.client``) against the shared e2e server (the tiny model, its API
key): every call a user makes, typed; a bad input and a wrong key as ``SeqGPTError`` with the
server's fields; the async client with calls in flight together. Random weights: shapes,
counts and invariants, not answers (exact answers: ``tests/unit/client`` on scripted ones)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from loadtest.server import ServerProcess
from serving.client import AsyncSeqGPTClient, SeqGPTClient, SeqGPTConnectionError, SeqGPTError
from serving.contract.schemas import ClassifyResponse, ExtractResponse, ItemError
from serving.contract.status import StatusResponse

from .conftest import API_KEY

pytestmark = pytest.mark.timeout(600)

LABELS = ["财经", "体育", "娱乐"]
FIELDS = ["人物", "地点", "组织机构"]
TEXT = "今天上证指数收涨1.2%，券商板块领涨。"
PERSON = "张三于2023年在北京加入阿里巴巴。"


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[SeqGPTClient]:
    with SeqGPTClient(server.url, api_key=API_KEY) as client:
        yield client


def test_classify_is_one_label_of_the_set(client: SeqGPTClient) -> None:
    answer = client.classify(TEXT, LABELS)
    assert isinstance(answer, ClassifyResponse)
    assert answer.label in LABELS
    assert (answer.windows, answer.prompts) == (1, None)
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert answer.usage.prompt_tokens > 0


def test_options_pass_through(client: SeqGPTClient) -> None:
    answer = client.classify(TEXT, ",".join(LABELS), scores=True, return_prompts=True)
    assert answer.scores is not None
    assert list(answer.scores) == LABELS
    assert sum(answer.scores.values()) == pytest.approx(1.0, abs=1e-3)
    assert answer.prompts is not None
    assert TEXT in answer.prompts[0]


def test_extract_gives_every_field_with_grounded_spans(client: SeqGPTClient) -> None:
    answer = client.extract(PERSON, FIELDS)
    assert isinstance(answer, ExtractResponse)
    assert list(answer.fields) == FIELDS
    for spans in answer.fields.values():
        for span in spans:
            assert PERSON[span.start : span.end] == span.text


def test_batch_forms_answer_each_text_in_order(client: SeqGPTClient) -> None:
    classified = client.classify_batch([TEXT, " ", PERSON], LABELS)
    first, blank, last = classified.results
    assert isinstance(first, ClassifyResponse)
    assert first.label in LABELS
    assert isinstance(blank, ItemError)
    assert (blank.error.code, blank.error.param) == (400, "text")
    assert isinstance(last, ClassifyResponse)
    extracted = client.extract_batch([PERSON, TEXT], FIELDS)
    assert len(extracted.results) == 2
    for result in extracted.results:
        assert isinstance(result, ExtractResponse)
        assert list(result.fields) == FIELDS


def test_status_is_the_servers(client: SeqGPTClient) -> None:
    status = client.status()
    assert isinstance(status, StatusResponse)
    assert (status.healthy, status.device, status.dtype, status.draining) == (
        True,
        "cpu",
        "float32",
        False,
    )
    assert status.max_inflight_prompts > 0


def test_a_bad_input_is_a_400_naming_its_field(client: SeqGPTClient) -> None:
    with pytest.raises(SeqGPTError) as raised:
        client.classify(TEXT, [])
    error = raised.value
    assert (error.status_code, error.type, error.param, error.code) == (
        400,
        "BadRequestError",
        "labels",
        400,
    )
    assert error.message
    assert not isinstance(error, SeqGPTConnectionError)


@pytest.mark.parametrize("key", ["wrong-key", None])
def test_a_wrong_or_missing_key_is_a_401(server: ServerProcess, key: str | None) -> None:
    with SeqGPTClient(server.url, api_key=key) as client, pytest.raises(SeqGPTError) as raised:
        client.extract(PERSON, FIELDS)
    assert (raised.value.status_code, raised.value.type) == (401, "AuthenticationError")


def test_nothing_listening_is_a_connection_error() -> None:
    client = SeqGPTClient("http://127.0.0.1:9", timeout=5.0)
    with client, pytest.raises(SeqGPTConnectionError) as raised:
        client.status()
    assert raised.value.status_code is None
    assert raised.value.type == "ConnectError"


def test_the_async_client_sends_calls_together(server: ServerProcess) -> None:
    async def main() -> tuple[list[ClassifyResponse], ExtractResponse, StatusResponse]:
        async with AsyncSeqGPTClient(server.url, api_key=API_KEY) as client:
            classified = await asyncio.gather(*(client.classify(TEXT, LABELS) for _ in range(4)))
            return list(classified), await client.extract(PERSON, FIELDS), await client.status()

    classified, extracted, status = asyncio.run(main())
    assert [answer.label in LABELS for answer in classified] == [True] * 4
    assert len({answer.label for answer in classified}) == 1  # greedy: one text, one answer
    assert list(extracted.fields) == FIELDS
    assert status.healthy
