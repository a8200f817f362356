"""``SeqGPTClient``: the task API from a blocking program.

    with SeqGPTClient("http://localhost:8000", api_key="...") as client:
        client.classify("今天上证指数收涨1.2%。", ["财经", "体育"]).label

Each call sends one request (retried as ``serving.client.retry`` says) and returns the answer as
the contract's response model, or raises ``SeqGPTError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from serving.client.calls import (
    Labels,
    Model,
    batch_body,
    client_options,
    extract_body,
    parse,
    request_headers,
    retry_policy,
    task_body,
)
from serving.client.exceptions import connection_error
from serving.client.retry import Attempts, RetryBudget, RetryPolicy, retry_after
from serving.contract.schemas import (
    ClassifyBatchResponse,
    ClassifyResponse,
    ExtractBatchResponse,
    ExtractResponse,
)
from serving.contract.status import StatusResponse

__all__ = ["SeqGPTClient"]


class SeqGPTClient:
    """A blocking client of a seqgpt-serve server at ``base_url`` (one connection pool)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = 2,
        *,
        max_retry_seconds: float = 60.0,
        retry_statuses: frozenset[int] | None = None,
        retry_transport_errors: bool = False,
        retry_budget: RetryBudget | None = None,
        limits: httpx.Limits | None = None,
        transport: httpx.BaseTransport | None = None,
        priority: str | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """``api_key`` goes as ``Authorization: Bearer``; ``timeout`` (seconds or an
        ``httpx.Timeout``) bounds each send; ``max_retries`` and ``max_retry_seconds`` bound the
        retries of a 429 or 503 (``retry_statuses``), and ``retry_budget`` (made for this client
        unless given) the retries of all its calls; ``priority`` (``"interactive"`` or ``"batch"``)
        goes as ``X-SeqGPT-Priority`` on every call (batch work yields to interactive work; unset,
        none is sent: interactive); ``transport`` and ``sleep`` are for tests."""
        self.retry = retry_policy(
            max_retries, max_retry_seconds, retry_statuses, retry_transport_errors
        )
        self.retry_budget = retry_budget or RetryBudget()
        self._sleep = sleep or time.sleep
        self._http = httpx.Client(
            **client_options(base_url, api_key, timeout, limits, transport, priority)
        )

    @property
    def base_url(self) -> httpx.URL:
        """The server's address."""
        return self._http.base_url

    def classify(
        self, text: str, labels: Labels, *, request_id: str | None = None, **options: Any
    ) -> ClassifyResponse:
        """``POST /v1/classify``: ``options`` are the body's (``multi_label``, ``scores`` …)."""
        body = task_body(text, labels, options)
        return self._call(ClassifyResponse, "/v1/classify", body, request_id)

    def extract(
        self,
        text: str,
        labels: Labels | None = None,
        schema: Mapping[str, Any] | None = None,
        *,
        request_id: str | None = None,
        **options: Any,
    ) -> ExtractResponse:
        """``POST /v1/extract`` with ``labels`` (or a ``schema`` tree, where the server has it)."""
        body = extract_body(text, labels, schema, options)
        return self._call(ExtractResponse, "/v1/extract", body, request_id)

    def classify_batch(
        self, texts: Sequence[str], labels: Labels, *, request_id: str | None = None, **options: Any
    ) -> ClassifyBatchResponse:
        """``POST /v1/classify/batch``: one result per text, an answer or that text's error."""
        body = batch_body(texts, labels, None, options)
        return self._call(ClassifyBatchResponse, "/v1/classify/batch", body, request_id)

    def extract_batch(
        self,
        texts: Sequence[str],
        labels: Labels | None = None,
        schema: Mapping[str, Any] | None = None,
        *,
        request_id: str | None = None,
        **options: Any,
    ) -> ExtractBatchResponse:
        """``POST /v1/extract/batch``: one result per text, an answer or that text's error."""
        body = batch_body(texts, labels, schema, options)
        return self._call(ExtractBatchResponse, "/v1/extract/batch", body, request_id)

    def status(self) -> StatusResponse:
        """``GET /v1/status``: health, model, device, dtype and load of the process answering."""
        return parse(StatusResponse, self.request("GET", "/v1/status"))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        """One call, retried by ``retry`` (else the client's policy): the last answer, whatever its
        status; ``SeqGPTConnectionError`` when none came."""
        policy = retry or self.retry
        attempts = Attempts(policy, self.retry_budget)
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        while True:
            try:
                response = self._http.request(method, path, json=json, headers=headers, **extra)
            except httpx.TransportError as exc:
                if not policy.transport_errors:
                    raise connection_error(exc) from exc
                failure: httpx.Response | httpx.TransportError = exc
                delay = attempts.next_wait(None)
            else:
                if response.status_code not in policy.statuses:
                    return response
                failure = response
                delay = attempts.next_wait(retry_after(response))
            if delay is None:
                if isinstance(failure, httpx.Response):
                    return failure
                raise connection_error(failure) from failure
            self._sleep(delay)

    def _call(
        self, model: type[Model], path: str, body: dict[str, Any], request_id: str | None
    ) -> Model:
        response = self.request("POST", path, json=body, headers=request_headers(request_id))
        return parse(model, response)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> SeqGPTClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
