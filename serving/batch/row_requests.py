"""One batch row's request and answer, in the REST API's own terms.

A row is checked by the API's request models (``serving.contract.schemas``), so a bad row gets the
400 the API would answer; a row's answer is the body the route would return (``answer_body``), and
its error is the API's error body (``error_of``). A ``RowAnswerer`` answers checked requests: the
in-process engine (``serving.batch.engine``) or a server (``serving.batch.remote``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from pydantic import ValidationError

from serving.batch.files import BadRow, Row
from serving.contract.answers import answer
from serving.contract.schemas import ClassifyRequest, ExtractRequest
from serving.contract.validation import describe_validation_errors
from serving.core.errors import ServingError, error_body
from serving.core.results import TaskResult

__all__ = [
    "TASK_PATHS",
    "RowAnswerer",
    "RowRequest",
    "RunFailed",
    "answer_body",
    "error_of",
    "request_id_of",
    "request_of",
]

# Service task name -> REST route.
TASK_PATHS = {
    "classify": "/v1/classify",
    "classify_multi": "/v1/classify",
    "extract": "/v1/extract",
}


# What a server takes as X-Request-Id (serving.http.observe); a row's id is always one, so the
# id in OUTPUT is the one in the server's request log.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RunFailed(Exception):
    """The whole run cannot go on (the server refuses the key, the engine died, ...)."""


@dataclass(frozen=True)
class RowRequest:
    """A checked request of one row: the service task, its text and labels, a request id."""

    task: str
    text: str
    labels: list[str] | str | None
    request_id: str
    schema: dict[str, Any] | None = None
    """An extraction schema, sent instead of the labels."""

    def body(self) -> dict[str, Any]:
        """The REST request body."""
        body: dict[str, Any] = {"text": self.text}
        if self.schema is not None:
            body["schema"] = self.schema
        else:
            body["labels"] = self.labels
        if self.task == "classify_multi":
            body["multi_label"] = True
        return body


class RowAnswerer(Protocol):
    """Answers one row: the REST answer body, or ``{"error": ...}`` for the row alone.

    Transient refusals (overload, a full queue) are retried inside; a failure of the whole run
    raises ``RunFailed``.
    """

    default_concurrency: int
    """Rows to keep in flight unless the command says otherwise."""

    async def answer(self, request: RowRequest) -> dict[str, Any]: ...


def request_of(
    task: str,
    row: Row | BadRow,
    labels: str | None,
    schema: dict[str, Any] | None = None,
    own_labels: bool = True,
) -> RowRequest | dict[str, Any]:
    """The row's checked request, or the API's error body when the row is not one (400; 413 for
    a row over the size limit). A ``schema`` is sent for every row, instead of its labels.
    ``own_labels=False``: a row's ``labels`` is not its label set (``seqgpt-serve eval``'s
    classification reads it as the gold answer)."""
    if isinstance(row, BadRow):
        return error_body(row.status, row.message, row.param)
    keep = own_labels and schema is None
    fields = row.fields if keep else {k: v for k, v in row.fields.items() if k != "labels"}
    if schema is not None:
        body: dict[str, Any] = {**fields, "schema": schema}
    elif labels is not None:
        body = {"labels": labels, **fields}
    else:
        body = dict(fields)
    if "labels" not in body and schema is None:
        message = f"Row {row.number} has no labels, and the command was given no --labels."
        return error_body(HTTPStatus.BAD_REQUEST, message, "labels")
    model = ExtractRequest if task == "extract" else ClassifyRequest
    try:
        checked = model.model_validate(body)
    except ValidationError as exc:
        message, param = describe_validation_errors(exc.errors())
        return error_body(HTTPStatus.BAD_REQUEST, message, param)
    tree = getattr(checked, "schema_", None)
    return RowRequest(task, checked.text, checked.labels, request_id_of(row), tree)


def request_id_of(row: Row) -> str:
    """The request id of ``row``: ``batch-{id}``, or, when that is no valid X-Request-Id (too
    long, other characters), ``batch-row{number}-`` and a digest of the id. The same every run."""
    plain = f"batch-{row.id}"
    if _SANE_ID.fullmatch(plain):
        return plain
    digest = hashlib.sha256(str(row.id).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"batch-row{row.number}-{digest}"


def answer_body(result: TaskResult) -> dict[str, Any]:
    """The body ``/v1/classify`` or ``/v1/extract`` answers for ``result`` (no prompts echoed),
    built by the routes' own ``serving.contract.answers.answer``."""
    return answer(result, return_prompts=False).model_dump(mode="json", exclude_unset=True)


def error_of(exc: Exception) -> dict[str, Any]:
    """The API's error body for an exception of the service, as the server renders it."""
    if isinstance(exc, ServingError):
        return error_body(exc.status, str(exc), exc.param)
    # Everything else goes through vLLM's handlers on the server (InvalidInputError included).
    from vllm.entrypoints.serve.exception_handling.error_response import create_error_response

    rendered: dict[str, Any] = create_error_response(exc).model_dump()
    return rendered
