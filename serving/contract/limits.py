"""The completion routes' cost limits, shared by every way in to them.

The gate (``serving.http.gate``) applies them to ``/v1/completions``, chat and ``/invocations``
bodies; the web UI's free-prompt tab applies the same to what it sends to the same handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from serving.core.settings import Settings

__all__ = ["CompletionLimits", "completion_limit_error"]


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
        value = payload.get(field)
        # bool is an int in Python; chat's "logprobs": true is a switch, not a count.
        if isinstance(value, int) and not isinstance(value, bool) and value > bound:
            return f"'{field}' is {value}; this server allows at most {bound}.", field
    return None
