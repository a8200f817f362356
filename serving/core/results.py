"""What a task request produces: each prompt's generation, and the request's combined result.

Below the task registry (``serving.core.tasks``) and the service that both use them, so the core
has no import circle; the contract turns a ``TaskResult`` into a response body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Generation", "TaskResult"]


@dataclass(frozen=True)
class Generation:
    """One prompt's generation and its parse."""

    prompt: str
    labels: list[str]
    text: str
    parsed: Any
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    window: int = 0
    """The window of the text this prompt read (0: the first, or the whole text)."""
    offset: int = 0
    """Where that window starts in the text: ``parsed`` holds offsets in the window."""

    @property
    def truncated(self) -> bool:
        """Whether the generation stopped at its token budget rather than at its end."""
        return self.finish_reason == "length"


@dataclass(frozen=True)
class TaskResult:
    """All generations of one task request, in prompt order, and their combined answer."""

    task: str
    generations: list[Generation] = field(default_factory=list)
    value: Any = None
    scores: dict[str, float] | None = None
    windows: int = 1
    """How many windows of the text were sent (1: the whole text in one prompt per chunk)."""

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens summed over the request's prompts."""
        return sum(g.prompt_tokens for g in self.generations)

    @property
    def completion_tokens(self) -> int:
        """Generated tokens summed over the request's prompts."""
        return sum(g.completion_tokens for g in self.generations)

    @property
    def truncated(self) -> bool:
        """Whether any prompt's generation stopped at its token budget."""
        return any(g.truncated for g in self.generations)
