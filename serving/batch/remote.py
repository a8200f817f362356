"""The remote engine of a batch run: a seqgpt-serve server (or a Kubernetes Service of them).

Each row is one ``POST /v1/classify`` or ``/v1/extract`` with ``X-SeqGPT-Priority: batch`` (the
server lets interactive requests go first; ``--priority interactive`` sends rows as such), sent by
the Python client (``serving.client.AsyncSeqGPTClient``: one for the run, its pool sized to the
rows the caller keeps in flight). What an answer means:

- 200: the row's answer.
- 429, 502, 503, and failures to connect or to read an answer: the server is busy or passing
  (a full in-flight bound or queue, a pod restarting): the row is sent again as
  ``serving.client.retry`` says: after the larger of the server's ``Retry-After`` and an
  exponential backoff (never sooner than 0.5 s), with jitter, and within the client's retry
  budget, which every row of the run shares: retries are at most 20 % of first sends plus 10 a
  second, a row past it waiting its turn, so the run paces itself to the server instead of
  flooding it (``tests/api/test_retry_pacing.py``). A row still refused when its next wait
  would end past ``give_up_after_s`` stops the run (rows done so far are kept; a rerun resumes).
- 401, 403: the key is wrong, for every row: the run stops. 404, 405: not a seqgpt-serve
  server at that address: the run stops.
- Any other status (400, 413, 500, 504 ...): that row's error, in the server's error body.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Any

import httpx

from serving.batch.row_requests import TASK_PATHS, RowRequest, RunFailed
from serving.client import AsyncSeqGPTClient, RetryPolicy, SeqGPTConnectionError
from serving.core.errors import error_body

__all__ = ["DEFAULT_CONCURRENCY", "HttpAnswerer", "batch_client", "http_answerer", "http_source"]

DEFAULT_CONCURRENCY = 64
GIVE_UP_AFTER_S = 300.0
_RETRY = frozenset(
    {HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.BAD_GATEWAY, HTTPStatus.SERVICE_UNAVAILABLE}
)
_CHECK_ONCE = RetryPolicy(max_retries=0)  # /health: _check_reachable counts its own tries
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what the server takes as X-Request-Id
# A row may wait long in a busy server's queue; the server's own deadline ends it before this.
_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def http_source(
    url: str, api_key: str | None, concurrency: int | None, priority: str = "batch"
) -> Callable[[], contextlib.AbstractAsyncContextManager[HttpAnswerer]]:
    """What ``run_batch`` starts: a client of the server at ``url``, its rows sent as
    ``priority`` work (batch: they yield to interactive requests)."""
    size = concurrency or DEFAULT_CONCURRENCY
    return lambda: http_answerer(url, api_key, size, priority=priority)


@contextlib.asynccontextmanager
async def http_answerer(
    url: str,
    api_key: str | None,
    concurrency: int,
    give_up_after_s: float = GIVE_UP_AFTER_S,
    priority: str = "batch",
) -> AsyncIterator[HttpAnswerer]:
    """An answerer on the server at ``url``, checked to answer ``/health`` first."""
    client = batch_client(url, api_key, concurrency, give_up_after_s, priority=priority)
    async with client:
        await _check_reachable(client, url)
        yield HttpAnswerer(client)


def batch_client(
    url: str,
    api_key: str | None,
    concurrency: int,
    give_up_after_s: float = GIVE_UP_AFTER_S,
    transport: httpx.AsyncBaseTransport | None = None,
    priority: str = "batch",
) -> AsyncSeqGPTClient:
    """The run's client: 429, 502, 503 and failed connections retried for ``give_up_after_s``
    under the client's one retry budget, shared by all rows (``transport``: a test's stand-in
    server); every row says ``X-SeqGPT-Priority: priority`` (batch by default)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return AsyncSeqGPTClient(
        url,
        api_key,
        timeout=_TIMEOUT,
        max_retries=None,
        max_retry_seconds=give_up_after_s,
        retry_statuses=_RETRY,
        retry_transport_errors=True,
        limits=limits,
        transport=transport,
        priority=priority,
    )


async def _check_reachable(client: AsyncSeqGPTClient, url: str) -> None:
    """Fail in seconds, not after the retries of a row, when nothing answers at ``url``."""
    for attempt in range(3):
        try:
            await client.request("GET", "/health", timeout=10.0, retry=_CHECK_ONCE)
        except SeqGPTConnectionError as exc:
            if attempt == 2:
                raise RunFailed(f"nothing answers at {url} ({exc.message})") from exc
            await asyncio.sleep(1.0)
        else:
            return


class HttpAnswerer:
    """Answers rows by sending them to a server, retrying what the server says to retry."""

    default_concurrency = DEFAULT_CONCURRENCY

    def __init__(self, client: AsyncSeqGPTClient):
        self._client = client

    async def answer(self, request: RowRequest) -> dict[str, Any]:
        """The server's answer body for one row, or its error body."""
        path = TASK_PATHS[request.task]
        headers = {"X-Request-Id": request.request_id}
        if not _SANE_ID.fullmatch(request.request_id):
            headers = {}
        try:
            response = await self._client.request(
                "POST", path, json=request.body(), headers=headers
            )
        except SeqGPTConnectionError as exc:  # no answer, retried as long as the policy allows
            raise self._gave_up(exc.message) from exc
        if response.status_code in self._client.retry.statuses:
            raise self._gave_up(f"status {response.status_code}")
        return _outcome(response, self._client.base_url)

    def _gave_up(self, problem: str) -> RunFailed:
        return RunFailed(
            f"{self._client.base_url} refused a row for {self._client.retry.max_seconds:g} s "
            f"(last: {problem}); rerun the same command to resume"
        )


def _outcome(response: httpx.Response, base_url: httpx.URL) -> dict[str, Any]:
    """The answer of a final (not retried) response, or the run's end."""
    status = response.status_code
    if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        raise RunFailed(f"{base_url} refused the API key ({status}): pass the right --api-key")
    if status in (HTTPStatus.NOT_FOUND, HTTPStatus.METHOD_NOT_ALLOWED):
        raise RunFailed(
            f"{base_url} has no {response.request.url.path} ({status}): is it a seqgpt-serve "
            "server?"
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if status == HTTPStatus.OK:
        if not isinstance(body, dict):
            raise RunFailed(f"{base_url} answered a row with a body that is not a JSON object")
        return body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "message" in error:
        return {"error": error}
    message = f"The server answered {status} {response.reason_phrase}".rstrip() + "."
    try:
        return error_body(status, message)
    except ValueError:  # a status http.HTTPStatus does not know (a proxy's 520 ...)
        return {"error": {"message": message, "type": "HTTPError", "param": None, "code": status}}
