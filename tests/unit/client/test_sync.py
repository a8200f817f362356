"""``SeqGPTClient`` against scripted server answers (httpx's MockTransport): the requests it
sends, the typed answers it returns, what it retries and waits, and the error it raises."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from serving.client import SeqGPTClient, SeqGPTConnectionError, SeqGPTError
from serving.client.retry import RetryBudget
from serving.contract.schemas import ClassifyResponse, ExtractResponse, ItemError

USAGE = {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}
CLASSIFIED = {"label": "a", "labels": ["a"], "windows": 1, "truncated": False, "usage": USAGE}
SPAN = {"text": "张三", "start": 0, "end": 2}
EXTRACTED = {"fields": {"人物": [SPAN]}, "windows": 1, "truncated": False, "usage": USAGE}
BAD_LABEL = {
    "error": {
        "message": "Label 0 is empty.",
        "type": "BadRequestError",
        "param": "labels",
        "code": 400,
    }
}

Reply = httpx.Response | Exception


class Server:
    """Answers each request with the next scripted reply; keeps the requests and the waits."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.sent: list[httpx.Request] = []
        self.waits: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def body(self, index: int = -1) -> Any:
        return json.loads(self.sent[index].content)


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[SeqGPTClient, Server]]]:
    made: list[SeqGPTClient] = []

    def make(replies: list[Reply], **options: Any) -> tuple[SeqGPTClient, Server]:
        server = Server(replies)
        client = SeqGPTClient(
            "http://server/",
            transport=httpx.MockTransport(server.handle),
            sleep=server.waits.append,
            **options,
        )
        client.retry = replace(client.retry, rng=lambda: 0.0)  # the jitter's low end: exact waits
        made.append(client)
        return client, server

    yield make
    for client in made:
        client.close()


def test_classify_sends_the_body_and_the_key_and_returns_the_typed_answer(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, server = serve([httpx.Response(200, json=CLASSIFIED)], api_key="k")
    answer = client.classify("今天", ["a", "b"], multi_label=True, request_id="r-1")
    assert answer == ClassifyResponse.model_validate(CLASSIFIED)
    assert answer.label == "a"
    (sent,) = server.sent
    assert (sent.method, str(sent.url)) == ("POST", "http://server/v1/classify")
    assert server.body() == {"text": "今天", "labels": ["a", "b"], "multi_label": True}
    assert sent.headers["Authorization"] == "Bearer k"
    assert sent.headers["X-Request-Id"] == "r-1"


def test_without_a_key_no_authorization_is_sent(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, server = serve([httpx.Response(200, json=CLASSIFIED)])
    client.classify("今天", "a,b")
    assert "Authorization" not in server.sent[0].headers
    assert server.body()["labels"] == "a,b"


def test_extract_with_labels_or_a_schema_passed_through(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, server = serve([httpx.Response(200, json=EXTRACTED) for _ in range(2)])
    answer = client.extract("张三在北京", ["人物"], return_prompts=True)
    assert isinstance(answer, ExtractResponse)
    assert answer.fields["人物"][0].text == "张三"
    assert server.body() == {"text": "张三在北京", "labels": ["人物"], "return_prompts": True}
    client.extract("张三在北京", schema={"人物": ["职位"]})
    assert server.body() == {"text": "张三在北京", "schema": {"人物": ["职位"]}}
    assert server.sent[-1].url.path == "/v1/extract"


def test_batch_forms_return_answers_and_item_errors_in_order(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    item_error = {"error": {**BAD_LABEL["error"], "message": "The text is empty.", "param": "text"}}
    replies = [
        httpx.Response(200, json={"results": [CLASSIFIED, item_error]}),
        httpx.Response(200, json={"results": [EXTRACTED]}),
    ]
    client, server = serve(replies)
    classified = client.classify_batch(["今天", " "], ["a", "b"], decoding="fast")
    assert server.sent[0].url.path == "/v1/classify/batch"
    assert server.body(0) == {"texts": ["今天", " "], "labels": ["a", "b"], "decoding": "fast"}
    first, second = classified.results
    assert isinstance(first, ClassifyResponse)
    assert isinstance(second, ItemError)
    assert second.error.param == "text"
    extracted = client.extract_batch(["张三"], labels="人物")
    assert server.sent[1].url.path == "/v1/extract/batch"
    assert server.body(1) == {"texts": ["张三"], "labels": "人物"}
    assert isinstance(extracted.results[0], ExtractResponse)


def test_status_is_the_typed_status_document(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    status = {
        "healthy": True,
        "model": "seqgpt",
        "device": "cpu",
        "dtype": "float32",
        "cpu": "x86_64 AVX2",
        "running": 0,
        "waiting": 0,
        "inflight_prompts": 0,
        "max_inflight_prompts": 256,
        "draining": False,
    }
    client, server = serve([httpx.Response(200, json=status)])
    answer = client.status()
    assert (server.sent[0].method, server.sent[0].url.path) == ("GET", "/v1/status")
    assert (answer.healthy, answer.max_inflight_prompts, answer.api_processes) == (True, 256, 1)


def test_429_and_503_are_retried_after_retry_after(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    replies: list[Reply] = [
        httpx.Response(429, headers={"Retry-After": "1"}, json={"error": {}}),
        httpx.Response(503, headers={"Retry-After": "2"}),
        httpx.Response(200, json=CLASSIFIED),
    ]
    client, server = serve(replies)
    assert client.classify("今天", ["a"]).label == "a"
    assert len(server.sent) == 3
    assert server.waits == [1.0, 2.0]


def test_without_retry_after_the_client_backs_off(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, server = serve(
        [httpx.Response(503), httpx.Response(503), httpx.Response(200, json=CLASSIFIED)]
    )
    client.classify("今天", ["a"])
    assert server.waits == [0.5, 1.0]


def test_past_max_retries_the_last_refusal_is_raised(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    busy = {"error": {"message": "Busy.", "type": "RateLimitError", "param": None, "code": 429}}
    replies: list[Reply] = [
        httpx.Response(429, headers={"Retry-After": "0"}, json=busy) for _ in range(3)
    ]
    client, server = serve(replies, max_retries=2)
    with pytest.raises(SeqGPTError) as raised:
        client.classify("今天", ["a"])
    assert (raised.value.status_code, raised.value.type, raised.value.message) == (
        429,
        "RateLimitError",
        "Busy.",
    )
    assert len(server.sent) == 3
    assert server.waits == [0.5, 1.0]  # Retry-After: 0 waits the floor, then the backoff


def test_the_clients_calls_share_one_retry_budget(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    """A budget of one retry: the first call spends it, the second call's refusal is final."""
    budget = RetryBudget(ratio=0.0, per_second=0.0, burst=1.0)
    replies: list[Reply] = [httpx.Response(503), httpx.Response(200, json=CLASSIFIED)]
    client, server = serve([*replies, httpx.Response(503)], retry_budget=budget)
    assert client.classify("t", ["a"]).label == "a"
    with pytest.raises(SeqGPTError) as raised:
        client.classify("t", ["a"])
    assert raised.value.status_code == 503
    assert (len(server.sent), server.waits) == (3, [0.5])


def test_a_retry_after_past_the_time_bound_is_not_waited(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, server = serve(
        [httpx.Response(503, headers={"Retry-After": "120"})], max_retry_seconds=60.0
    )
    with pytest.raises(SeqGPTError) as raised:
        client.classify("今天", ["a"])
    assert raised.value.status_code == 503
    assert raised.value.type == "ServiceUnavailableError"
    assert (len(server.sent), server.waits) == (1, [])


def test_the_error_body_is_the_exceptions_fields_and_is_not_retried(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, server = serve([httpx.Response(400, json=BAD_LABEL)])
    with pytest.raises(SeqGPTError) as raised:
        client.classify("今天", [""])
    error = raised.value
    assert (error.status_code, error.type, error.param, error.message, error.code) == (
        400,
        "BadRequestError",
        "labels",
        "Label 0 is empty.",
        400,
    )
    assert str(error) == "400 BadRequestError: Label 0 is empty. (param: labels)"
    assert not isinstance(error, SeqGPTConnectionError)
    assert len(server.sent) == 1


@pytest.mark.parametrize(
    ("response", "kind", "message"),
    [
        (
            httpx.Response(500, text="<html>oops</html>"),
            "InternalServerError",
            "The server answered 500 Internal Server Error.",
        ),
        (httpx.Response(401, json={"error": "Unauthorized"}), "UnauthorizedError", "Unauthorized"),
        (httpx.Response(520, text=""), "HTTPError", "The server answered 520."),
    ],
)
def test_an_error_without_the_common_body_is_still_one(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
    response: httpx.Response,
    kind: str,
    message: str,
) -> None:
    client, _ = serve([response])
    with pytest.raises(SeqGPTError) as raised:
        client.extract("t", ["x"])
    assert (raised.value.status_code, raised.value.type) == (response.status_code, kind)
    assert (raised.value.message, raised.value.param) == (message, None)


def test_a_200_that_is_not_the_answer_is_an_error(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, _ = serve([httpx.Response(200, text="<html>"), httpx.Response(200, json={"x": 1})])
    for _ in range(2):
        with pytest.raises(SeqGPTError, match="not a ClassifyResponse") as raised:
            client.classify("t", ["a"])
        assert raised.value.type == "InvalidResponseError"


def test_a_timeout_is_a_connection_error_not_retried_by_default(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, server = serve([httpx.ReadTimeout("timed out")], timeout=5.0)
    with pytest.raises(SeqGPTConnectionError) as raised:
        client.classify("t", ["a"])
    assert isinstance(raised.value, SeqGPTError)
    assert (raised.value.status_code, raised.value.type) == (None, "ReadTimeout")
    assert raised.value.message == "timed out"
    assert len(server.sent) == 1
    assert server.sent[0].extensions["timeout"]["read"] == 5.0


def test_the_default_timeout_outlasts_the_servers_deadline(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, server = serve([httpx.Response(200, json=CLASSIFIED)])
    client.classify("t", ["a"])
    assert server.sent[0].extensions["timeout"]["read"] > 120.0  # SEQGPT_REQUEST_TIMEOUT_S


def test_connection_failures_are_retried_when_asked(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    replies: list[Reply] = [httpx.ConnectError("refused"), httpx.Response(200, json=CLASSIFIED)]
    client, server = serve(replies, retry_transport_errors=True)
    assert client.classify("t", ["a"]).label == "a"
    assert (len(server.sent), len(server.waits)) == (2, 1)


def test_the_context_manager_closes_the_connections() -> None:
    with SeqGPTClient(
        "http://server", transport=httpx.MockTransport(lambda _: httpx.Response(200))
    ) as client:
        assert client.base_url == httpx.URL("http://server")
    assert client._http.is_closed


def test_priority_goes_as_a_header_on_every_call_and_none_by_default(
    serve: Callable[..., tuple[SeqGPTClient, Server]],
) -> None:
    client, server = serve([httpx.Response(200, json=CLASSIFIED)] * 2, priority="batch")
    client.classify("今天", ["a"])
    client.classify("明天", ["a"])
    assert [r.headers["X-SeqGPT-Priority"] for r in server.sent] == ["batch", "batch"]
    plain, server = serve([httpx.Response(200, json=CLASSIFIED)])
    plain.classify("今天", ["a"])
    assert "X-SeqGPT-Priority" not in server.sent[0].headers


def test_an_unknown_priority_is_refused_when_the_client_is_made() -> None:
    with pytest.raises(ValueError, match="priority is one of interactive, batch"):
        SeqGPTClient("http://server", priority="urgent")
