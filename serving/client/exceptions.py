"""What a call of the client raises: one exception type for every failure.

    SeqGPTError                  the server answered an error (its common body, any status),
     |                           or a 200 whose body is not the answer
     +-- SeqGPTConnectionError   no answer came: refused, broken, or past the timeout

Every one carries ``status_code`` (``None`` when no answer came), ``type``, ``param`` (the request
field at fault, or ``None``), ``message`` and ``code``, read from the server's body
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import httpx

__all__ = ["SeqGPTConnectionError", "SeqGPTError", "connection_error", "error_of"]


class SeqGPTError(Exception):
    """The server refused or failed a call; its error body, field by field."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        type: str,  # the error body's name for it
        param: str | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.type = type
        self.param = param
        self.code = code

    def __str__(self) -> str:
        where = f" (param: {self.param})" if self.param else ""
        status = f"{self.status_code} " if self.status_code is not None else ""
        return f"{status}{self.type}: {self.message}{where}"


class SeqGPTConnectionError(SeqGPTError):
    """No answer came: the connection was refused or broken, or a timeout passed."""


def error_of(response: httpx.Response) -> SeqGPTError:
    """The error a non-200 answer stands for: its common body, else one made from its status."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        param, code = error.get("param"), error.get("code")
        return SeqGPTError(
            error["message"],
            status_code=status,
            type=str(error.get("type") or _type_of(status)),
            param=param if isinstance(param, str) else None,
            code=code if isinstance(code, int) else status,
        )
    if isinstance(error, str) and error:  # vLLM's own bare 401 body: {"error": "Unauthorized"}
        message = error
    else:
        message = f"The server answered {status} {response.reason_phrase}".rstrip() + "."
    return SeqGPTError(message, status_code=status, type=_type_of(status), code=status)


def connection_error(exc: httpx.TransportError) -> SeqGPTConnectionError:
    """The error of a call that got no answer."""
    return SeqGPTConnectionError(
        str(exc) or type(exc).__name__,
        status_code=None,
        type=type(exc).__name__,  # ConnectError, ReadTimeout ...: httpx's name for what failed
        param=None,
        code=None,
    )


def _type_of(status: int) -> str:
    """A type named after the status, as vLLM names them: ``NotFoundError``, ``InternalServerError``
    (only for an answer without the common body: a proxy's, or vLLM's bare 401)."""
    try:
        return HTTPStatus(status).phrase.removesuffix(" Error").replace(" ", "") + "Error"
    except ValueError:  # a status http.HTTPStatus does not know (a proxy's 520 ...)
        return "HTTPError"
