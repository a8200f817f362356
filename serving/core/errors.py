"""Every error the server answers, in one closed set, with one body.

The body is vLLM's OpenAI error body, ``{"error": {"message", "type", "param", "code"}}``, for
every route of the app (ours and vLLM's) and every status, with one ``type`` per kind::

    400 BadRequestError          invalid input (InvalidInputError, schema errors, invalid JSON)
    401 AuthenticationError      missing or wrong API key (serving.http.gate)
    404 NotFoundError            no such route (or a route this product does not serve)
    405 MethodNotAllowedError    the route exists, not with this method
    413 RequestTooLargeError     the body is over SEQGPT_MAX_BODY_BYTES (serving.http.gate); a text
                                 over SEQGPT_MAX_TEXT_CHARS, or one needing more prompts than
                                 SEQGPT_MAX_INFLIGHT could ever admit (TooLarge, param "text")
    429 RateLimitError           over SEQGPT_MAX_INFLIGHT task prompts (Overloaded, Retry-After)
    503 ServiceUnavailableError  vLLM's queue is full (--max-num-queued-reqs, Retry-After)
    504 TimeoutError             over SEQGPT_REQUEST_TIMEOUT_S (DeadlineExceeded)
    500 InternalServerError      a failure of this server's own code (InternalError)
    5xx                          engine failures, rendered by vLLM's own handlers

Messages are sentences for people that name what is wrong; never a library's repr. This module
is the closed set and the body; ``serving.http.error_handlers`` renders them as HTTP responses.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from vllm.exceptions import VLLMValidationError

__all__ = [
    "RETRY_AFTER_S",
    "DeadlineExceeded",
    "InternalError",
    "InvalidInputError",
    "Overloaded",
    "ServingError",
    "TooLarge",
    "error_body",
]

RETRY_AFTER_S = 1
_TYPES = {
    HTTPStatus.BAD_REQUEST: "BadRequestError",
    HTTPStatus.UNAUTHORIZED: "AuthenticationError",
    HTTPStatus.NOT_FOUND: "NotFoundError",
    HTTPStatus.METHOD_NOT_ALLOWED: "MethodNotAllowedError",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "RequestTooLargeError",
    HTTPStatus.TOO_MANY_REQUESTS: "RateLimitError",
    HTTPStatus.SERVICE_UNAVAILABLE: "ServiceUnavailableError",
    HTTPStatus.GATEWAY_TIMEOUT: "TimeoutError",
    HTTPStatus.INTERNAL_SERVER_ERROR: "InternalServerError",
}


class InvalidInputError(VLLMValidationError):
    """A request the task endpoints cannot serve as sent (400, with ``param``)."""


class ServingError(Exception):
    """An error of the task endpoints with its own status (not a client's bad input)."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    retry_after: int | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        """The request field at fault, when one is (the error body's ``param``)."""


class InternalError(ServingError):
    """A failure inside this server that is not the client's doing (500, details logged)."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR


class Overloaded(ServingError):
    """More task prompts in flight than ``SEQGPT_MAX_INFLIGHT`` allows: retry later."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    retry_after = RETRY_AFTER_S


class TooLarge(ServingError):
    """A text longer than the server takes, or needing more prompts than it could ever admit at
    once (a 429 would be retried forever): send less."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class DeadlineExceeded(ServingError):
    """The request ran past ``SEQGPT_REQUEST_TIMEOUT_S``; its prompts were aborted."""

    status = HTTPStatus.GATEWAY_TIMEOUT


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """vLLM's OpenAI error body for ``status``."""
    kind = _TYPES.get(HTTPStatus(status), HTTPStatus(status).phrase.replace(" ", "") + "Error")
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}
