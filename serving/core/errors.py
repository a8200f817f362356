"""Every error the server answers, in one closed set, rendered in one body.

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

Messages are sentences for people that name what is wrong; never a library's repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Protocol

from fastapi import HTTPException as FastAPIHTTPException
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from vllm.exceptions import QueueOverflowError, VLLMValidationError

from serving.contract.validation import describe_validation_errors

__all__ = [
    "DeadlineExceeded",
    "InternalError",
    "InvalidInputError",
    "Overloaded",
    "ServingError",
    "TooLarge",
    "error_body",
    "error_response",
    "install_error_handlers",
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
_MESSAGES = {
    HTTPStatus.NOT_FOUND: "There is no such route on this server.",
    HTTPStatus.METHOD_NOT_ALLOWED: "This route does not accept the {method} method.",
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


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    retry_after: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON response holding the common error body (and ``Retry-After`` when given)."""
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(error_body(status, message, param), status_code=status, headers=headers)


async def _serving_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServingError)
    return error_response(exc.status, str(exc), exc.param, retry_after=exc.retry_after)


async def _queue_full(_request: Request, _exc: Exception) -> JSONResponse:
    message = "The server's request queue is full; retry in a moment."
    return error_response(HTTPStatus.SERVICE_UNAVAILABLE, message, retry_after=RETRY_AFTER_S)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    template = _MESSAGES.get(HTTPStatus(exc.status_code))
    message = template.format(method=request.method) if template else str(exc.detail)
    return error_response(exc.status_code, message, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, param = describe_validation_errors(exc.errors())
    return error_response(HTTPStatus.BAD_REQUEST, message, param)


class _HandlesExceptions(Protocol):
    def add_exception_handler(self, exc_class_or_status_code: Any, handler: Any) -> None: ...


def install_error_handlers(app: _HandlesExceptions) -> None:
    """Render framework and task errors in the common body (after vLLM registered its own).

    ``app`` is the FastAPI app, or the ExceptionMiddleware of a stack already built from it.
    """
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(FastAPIHTTPException, _http_error)  # replaces vLLM's
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ServingError, _serving_error)
    app.add_exception_handler(QueueOverflowError, _queue_full)
