"""The completion routes' cost limits, shared by every way in to them.

The gate (``serving.http.gate``) applies them to ``/v1/completions``, chat and ``/invocations``
bodies; the web UI's free-prompt tab applies the same to what it sends to the same handler. A
value is read as vLLM's request models will read it (pydantic's lax integers: ``"64"``, ``64.0``
and ``"64.0"`` are all 64), so no spelling of a number passes the check and then counts more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from serving.core.settings import Settings

__all__ = ["CompletionLimits", "completion_limit_error"]

_INTEGER = TypeAdapter(int)


@dataclass(frozen=True)
class CompletionLimits:
    """Upper bounds on the cost parameters of a completions request."""

    max_tokens: int
    n: int
    logprobs: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CompletionLimits:
        """The limits the server's settings set."""
        return cls(
            max_tokens=settings.max_completion_tokens,
            n=settings.max_completion_n,
            logprobs=settings.max_logprobs,
        )

    def bounds(self) -> dict[str, int]:
        """The bound of each request field these limits cover."""
        return {
            "max_tokens": self.max_tokens,
            "max_completion_tokens": self.max_tokens,
            "n": self.n,
            "best_of": self.n,
            "logprobs": self.logprobs,
            "top_logprobs": self.logprobs,
        }


def completion_limit_error(payload: Any, limits: CompletionLimits) -> tuple[str, str] | None:
    """The message and field of the first limit a completions body exceeds, else None."""
    if not isinstance(payload, Mapping):
        return None
    for field, bound in limits.bounds().items():
        value = _count(payload.get(field))
        if value is not None and value > bound:
            return f"'{field}' is {value}; this server allows at most {bound}.", field
    return None


def _count(value: Any) -> int | None:
    """The integer vLLM's request models make of ``value``, or None where they make none (they
    then refuse it themselves, or it is chat's ``"logprobs": true``, a switch, not a count)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return _INTEGER.validate_python(value)
    except ValidationError:
        return None
