"""The remote engine of a batch run: a seqgpt-serve server (or a Kubernetes Service of them).

Each row is one ``POST /v1/classify`` or ``/v1/extract`` (httpx, async; the caller bounds the
rows in flight). What an answer means:

- 200: the row's answer.
- 429, 502, 503, and failures to connect or to read an answer: the server is busy or passing
  (a full in-flight bound or queue, a pod restarting): the row is sent again after the server's
  ``Retry-After``, else after an exponential backoff with jitter. A row still refused after
  ``give_up_after_s`` stops the run (rows done so far are kept; a rerun resumes).
- 401, 403: the key is wrong, for every row: the run stops. 404, 405: not a seqgpt-serve
  server at that address: the run stops.
- Any other status (400, 413, 500, 504 ...): that row's error, in the server's error body.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Any

import httpx

from serving.batch.rows import TASK_PATHS, RowRequest, RunFailed
from serving.core.errors import error_body

__all__ = ["DEFAULT_CONCURRENCY", "HttpRunner", "http_runner", "http_source"]

DEFAULT_CONCURRENCY = 64
GIVE_UP_AFTER_S = 300.0
_RETRY = {HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.BAD_GATEWAY, HTTPStatus.SERVICE_UNAVAILABLE}
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 15.0
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what the server takes as X-Request-Id
# A row may wait long in a busy server's queue; the server's own deadline ends it before this.
_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def http_source(
    url: str, api_key: str | None, concurrency: int | None
) -> Callable[[], contextlib.AbstractAsyncContextManager[HttpRunner]]:
    """What ``run_batch`` starts: a client of the server at ``url``."""
    return lambda: http_runner(url, api_key, concurrency or DEFAULT_CONCURRENCY)


@contextlib.asynccontextmanager
async def http_runner(
    url: str, api_key: str | None, concurrency: int, give_up_after_s: float = GIVE_UP_AFTER_S
) -> AsyncIterator[HttpRunner]:
    """A runner on the server at ``url``, checked to answer ``/health`` first."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, timeout=_TIMEOUT, limits=limits
    ) as client:
        await _check_reachable(client, url)
        yield HttpRunner(client, give_up_after_s)


async def _check_reachable(client: httpx.AsyncClient, url: str) -> None:
    """Fail in seconds, not after the retries of a row, when nothing answers at ``url``."""
    for attempt in range(3):
        try:
            await client.get("/health", timeout=10.0)
        except httpx.TransportError as exc:
            if attempt == 2:
                raise RunFailed(f"nothing answers at {url} ({_describe(exc)})") from exc
            await asyncio.sleep(1.0)
        else:
            return


class HttpRunner:
    """Answers rows by sending them to a server, retrying what the server says to retry."""

    default_concurrency = DEFAULT_CONCURRENCY

    def __init__(self, client: httpx.AsyncClient, give_up_after_s: float = GIVE_UP_AFTER_S):
        self._client = client
        self._give_up_after_s = give_up_after_s

    async def answer(self, request: RowRequest) -> dict[str, Any]:
        """The server's answer body for one row, or its error body."""
        path = TASK_PATHS[request.task]
        headers = {"X-Request-Id": request.request_id}
        if not _SANE_ID.fullmatch(request.request_id):
            headers = {}
        started, attempt = time.monotonic(), 0
        while True:
            try:
                response = await self._client.post(path, json=request.body(), headers=headers)
            except httpx.TransportError as exc:
                problem, delay = _describe(exc), None
            else:
                if response.status_code not in _RETRY:
                    return _outcome(response, self._client.base_url)
                problem, delay = f"status {response.status_code}", _retry_after(response)
            if time.monotonic() - started > self._give_up_after_s:
                raise RunFailed(
                    f"{self._client.base_url} refused a row for {self._give_up_after_s:g} s "
                    f"(last: {problem}); rerun the same command to resume"
                )
            backoff = min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2**attempt) * random.uniform(0.5, 1)
            await asyncio.sleep(delay if delay is not None else backoff)
            attempt += 1


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


def _retry_after(response: httpx.Response) -> float | None:
    """The server's ``Retry-After`` in seconds (the HTTP-date form is not used by vLLM)."""
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _describe(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__
