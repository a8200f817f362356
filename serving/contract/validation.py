"""Request-validation errors as one sentence for a person, with the field as ``param``.

pydantic reports a list of errors, each with a location such as ``("body", "labels", 3)``;
the first one is described (the count of the others is appended), never the raw list or the
input echoed back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["describe_validation_errors"]

_VALUE_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")


def describe_validation_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """The message and ``param`` for a list of pydantic/FastAPI validation errors."""
    if not errors:
        return "The request is invalid.", None
    first = errors[0]
    loc = [part for part in first.get("loc", ()) if part != "body" and not _internal(part)]
    param = str(loc[0]) if loc and isinstance(loc[0], str) else None
    message = _sentence(first, loc, param)
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" ({more} more problem{'s' if more > 1 else ''} in this request.)"
    return message, param


def _sentence(error: Mapping[str, Any], loc: list[Any], param: str | None) -> str:
    kind = str(error.get("type", ""))
    where = _where(loc)
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "malformed JSON")
        return f"The body is not valid JSON: {reason}."
    if param is None:
        return "The body must be a JSON object."
    if kind == "missing":
        return f"The field '{where}' is required."
    if kind == "extra_forbidden":
        return f"The field '{where}' is not accepted by this endpoint; remove it."
    msg = str(error.get("msg", "is invalid"))
    for prefix in _VALUE_ERROR_PREFIXES:
        if msg.startswith(prefix):
            return _end(msg.removeprefix(prefix))
    return _end(f"'{where}': {msg[:1].lower()}{msg[1:]}")


def _internal(part: Any) -> bool:
    """pydantic's schema markers in a location (``list[str]``, ``function-after[...]``)."""
    return isinstance(part, str) and ("[" in part or "-" in part)


def _where(loc: list[Any]) -> str:
    """``labels[3]`` for ``["labels", 3]``; dotted names for nested objects."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _end(sentence: str) -> str:
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."
