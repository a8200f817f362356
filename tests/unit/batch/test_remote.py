"""The ``--url`` runner against scripted server answers (httpx's MockTransport): what is the
row's answer, what is retried (and how long), what ends the run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from serving.batch import remote as batch_http
from serving.batch.remote import HttpAnswerer, batch_client, http_answerer
from serving.batch.row_requests import RowRequest, RunFailed

REQUEST = RowRequest("classify", "今天", ["a", "b"], "batch-r1")
OK = {"label": "a", "labels": ["a"], "truncated": False, "usage": {}}


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the sleeps instead of sleeping."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(batch_http.asyncio, "sleep", sleep)
    return slept


def _answer(
    replies: list[httpx.Response | Exception],
    request: RowRequest = REQUEST,
    give_up_after_s: float = 300.0,
) -> tuple[dict[str, Any], list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        sent.append(http_request)
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def main() -> dict[str, Any]:
        transport = httpx.MockTransport(handler)
        client = batch_client("http://server", None, 4, give_up_after_s, transport)
        client.retry = replace(client.retry, rng=lambda: 0.0)  # the jitter's low end
        async with client:
            return await HttpAnswerer(client).answer(request)

    return asyncio.run(main()), sent


def test_a_200_is_the_answer_and_the_request_is_the_rest_call() -> None:
    answer, (sent,) = _answer([httpx.Response(200, json=OK)])
    assert answer == OK
    assert (sent.method, sent.url.path) == ("POST", "/v1/classify")
    assert json.loads(sent.content) == {"text": "今天", "labels": ["a", "b"]}
    assert sent.headers["X-Request-Id"] == "batch-r1"
    assert sent.headers["X-SeqGPT-Priority"] == "batch"  # rows yield to interactive requests


def test_extraction_and_multi_label_go_to_their_routes() -> None:
    _, (sent,) = _answer([httpx.Response(200, json={})], RowRequest("extract", "t", "x", "r"))
    assert sent.url.path == "/v1/extract"
    _, (sent,) = _answer(
        [httpx.Response(200, json={})], RowRequest("classify_multi", "t", "x", "r")
    )
    assert json.loads(sent.content)["multi_label"] is True


def test_an_id_that_is_not_a_sane_request_id_is_not_sent_as_one() -> None:
    _, (sent,) = _answer(
        [httpx.Response(200, json=OK)], RowRequest("classify", "t", "a", "batch-行 1")
    )
    assert "X-Request-Id" not in sent.headers


def test_a_400_is_the_rows_error_in_the_servers_body() -> None:
    error = {
        "message": "Label 0 is empty.",
        "type": "BadRequestError",
        "param": "labels",
        "code": 400,
    }
    answer, sent = _answer([httpx.Response(400, json={"error": error})])
    assert answer == {"error": error}
    assert len(sent) == 1


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(500, text="<html>oops</html>"),
            "The server answered 500 Internal Server Error.",
        ),
        (httpx.Response(504, json={"detail": "x"}), "The server answered 504 Gateway Timeout."),
        (httpx.Response(520, text=""), "The server answered 520."),
    ],
)
def test_an_error_without_the_common_body_gets_one(response: httpx.Response, message: str) -> None:
    answer, _ = _answer([response])
    assert answer["error"]["message"] == message
    assert answer["error"]["code"] == response.status_code


def test_429_and_503_are_retried_after_retry_after(no_waiting: list[float]) -> None:
    replies: list[httpx.Response | Exception] = [
        httpx.Response(429, headers={"Retry-After": "1"}, json={"error": {}}),
        httpx.Response(503, headers={"Retry-After": "2"}),
        httpx.Response(200, json=OK),
    ]
    answer, sent = _answer(replies)
    assert answer == OK
    assert len(sent) == 3
    assert no_waiting == [1.0, 2.0]


def test_without_retry_after_the_backoff_grows(no_waiting: list[float]) -> None:
    replies: list[httpx.Response | Exception] = [httpx.Response(502) for _ in range(6)]
    answer, _ = _answer([*replies, httpx.Response(200, json=OK)])
    assert answer == OK
    assert no_waiting == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0]


def test_connection_failures_are_retried() -> None:
    replies: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=OK),
    ]
    assert _answer(replies)[0] == OK


def test_a_row_refused_past_the_limit_ends_the_run() -> None:
    with pytest.raises(RunFailed, match=r"refused a row for 0 s \(last: status 503\); rerun"):
        _answer([httpx.Response(503)], give_up_after_s=0)


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "refused the API key"), (403, "refused the API key"), (404, "has no /v1/classify")],
)
def test_a_wrong_key_or_address_ends_the_run(status: int, message: str) -> None:
    with pytest.raises(RunFailed, match=message):
        _answer([httpx.Response(status, json={"error": "Unauthorized"})])


def test_a_200_that_is_not_an_answer_ends_the_run() -> None:
    with pytest.raises(RunFailed, match="not a JSON object"):
        _answer([httpx.Response(200, text="<html>")])


def _serve(handler: Callable[[httpx.Request], httpx.Response]) -> Callable[..., Any]:
    """http_answerer with every client it makes using ``handler``."""

    real = httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(handler), **kwargs)

    return client


def test_the_runner_checks_the_server_first_and_sends_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=OK)

    monkeypatch.setattr(batch_http.httpx, "AsyncClient", _serve(handler))

    async def main() -> dict[str, Any]:
        async with http_answerer("http://server/", "k", concurrency=4) as runner:
            return await runner.answer(REQUEST)

    assert asyncio.run(main()) == OK
    assert [request.url.path for request in seen] == ["/health", "/v1/classify"]
    assert seen[1].headers["Authorization"] == "Bearer k"


def test_nothing_answering_fails_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    monkeypatch.setattr(batch_http.httpx, "AsyncClient", _serve(handler))

    async def main() -> None:
        async with http_answerer("http://nowhere:1", None, concurrency=1):
            pass

    with pytest.raises(
        RunFailed, match=r"nothing answers at http://nowhere:1 \(Connection refused\)"
    ):
        asyncio.run(main())
