"""The common error body on the wire: HTTP responses and the app's exception handlers.

The closed set of errors and their body are ``serving.core.errors``; here they become responses,
for every route of the app (ours and vLLM's) and every status, including the framework's own
errors (404, 405, invalid JSON, schema errors) and vLLM's full queue.
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
from vllm.exceptions import QueueOverflowError

from serving.contract.validation import describe_validation_errors
from serving.core.errors import RETRY_AFTER_S, ServingError, error_body

__all__ = ["error_response", "install_error_handlers"]

_MESSAGES = {
    HTTPStatus.NOT_FOUND: "There is no such route on this server.",
    HTTPStatus.METHOD_NOT_ALLOWED: "This route does not accept the {method} method.",
}


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
