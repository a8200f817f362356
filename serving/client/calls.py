"""What the two clients share: their settings, the request of each call and how its answer is read.

``SeqGPTClient`` and ``AsyncSeqGPTClient`` differ only in how they wait (a blocking or an
awaited send and sleep); the bodies they send and the typed answers they return are made here,
once. Options a task takes (``multi_label``, ``scores``, ``decoding``, ``return_prompts`` …) pass
through to the body unchanged, so the server's checks answer a bad one as it would any client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from serving import __version__
from serving.client.exceptions import SeqGPTError, error_of
from serving.client.retry import RETRY_STATUSES, RetryPolicy

__all__ = [
    "DEFAULT_TIMEOUT",
    "PRIORITIES",
    "PRIORITY_HEADER",
    "Labels",
    "batch_body",
    "client_options",
    "extract_body",
    "parse",
    "request_headers",
    "retry_policy",
    "task_body",
]

# The server ends a task request at its own deadline (SEQGPT_REQUEST_TIMEOUT_S, 120 s by
# default) with a 504 body; the client waits a little longer, so that body is what it reads.
DEFAULT_TIMEOUT = httpx.Timeout(130.0, connect=10.0)

PRIORITY_HEADER = "X-SeqGPT-Priority"
PRIORITIES = ("interactive", "batch")
"""What a call's work is to the server: interactive (the default) or batch, which yields to
interactive work (a tenant whose priority is batch stays batch whatever it sends)."""
Labels = Sequence[str] | str
Model = TypeVar("Model", bound=BaseModel)


def client_options(
    base_url: str,
    api_key: str | None,
    timeout: float | httpx.Timeout | None,
    limits: httpx.Limits | None,
    transport: Any,
    priority: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments of the httpx client under either client (``priority``: sent as
    ``X-SeqGPT-Priority`` on every call; None sends none, and the server takes interactive)."""
    headers = {"User-Agent": f"seqgpt-serve-client/{__version__}"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if priority is not None:
        if priority not in PRIORITIES:
            raise ValueError(
                f"priority is one of {', '.join(PRIORITIES)} (or None), not {priority!r}"
            )
        headers[PRIORITY_HEADER] = priority
    options: dict[str, Any] = {
        "base_url": base_url.rstrip("/"),
        "headers": headers,
        "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
    }
    if limits is not None:
        options["limits"] = limits
    if transport is not None:
        options["transport"] = transport
    return options


def retry_policy(
    max_retries: int | None,
    max_retry_seconds: float,
    retry_statuses: frozenset[int] | None,
    retry_transport_errors: bool,
) -> RetryPolicy:
    """The policy the constructor's arguments describe."""
    return RetryPolicy(
        max_retries=max_retries,
        max_seconds=max_retry_seconds,
        statuses=RETRY_STATUSES if retry_statuses is None else frozenset(retry_statuses),
        transport_errors=retry_transport_errors,
    )


def request_headers(request_id: str | None) -> dict[str, str]:
    """Per-call headers: the request id the server logs the call under, when one is given."""
    return {"X-Request-Id": request_id} if request_id else {}


def _labels(labels: Labels) -> list[str] | str:
    return labels if isinstance(labels, str) else list(labels)


def task_body(text: str, labels: Labels, options: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``/v1/classify``."""
    return {"text": text, "labels": _labels(labels), **options}


def extract_body(
    text: str, labels: Labels | None, schema: Mapping[str, Any] | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The body of ``/v1/extract``: labels, or a schema tree (passed through as it is)."""
    body: dict[str, Any] = {"text": text}
    if labels is not None:
        body["labels"] = _labels(labels)
    if schema is not None:
        body["schema"] = dict(schema)
    return {**body, **options}


def batch_body(
    texts: Sequence[str],
    labels: Labels | None,
    schema: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The body of a ``/batch`` route: the texts, then as ``extract_body`` for each."""
    body = extract_body("", labels, schema, options)
    del body["text"]
    return {"texts": list(texts), **body}


def parse(model: type[Model], response: httpx.Response) -> Model:
    """The typed answer of a 200, or the error its answer stands for, raised."""
    if response.status_code != HTTPStatus.OK:
        raise error_of(response)
    try:
        return model.model_validate(response.json())
    except ValueError as exc:  # not JSON, or pydantic's ValidationError (a ValueError)
        raise SeqGPTError(
            f"The server answered 200 with a body that is not a {model.__name__}: {exc}",
            status_code=response.status_code,
            type="InvalidResponseError",
        ) from exc
