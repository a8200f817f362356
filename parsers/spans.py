"""Result types of the parsers: spans grounded in the input text, and extraction results."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Extraction", "Span"]


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of the input text: ``text[start:end] == span.text`` (character offsets)."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Extraction:
    """Spans per requested label, plus the values the model produced that the text lacks."""

    fields: dict[str, list[Span]]
    """Every requested label, in request order, with its spans sorted by start offset."""
    ungrounded: dict[str, list[str]]
    """Only labels with some: values that occur nowhere in the text (kept for diagnostics)."""
    answered: tuple[str, ...] = field(default=(), compare=False)
    """The requested labels the generation wrote a line for (``None`` included), in order;
    diagnostics only, so it takes no part in comparing results."""
