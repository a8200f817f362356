"""Grounding: turn a value the model generated for a label into spans of the input text.

A value is looked up as a whole before it is split, so "北京，上海" stays one span when the
text contains "北京，上海". Otherwise it is split on tabs (SeqGPT's separator between spans),
and each piece that is still not found on ``，`` ``,`` ``、`` ``;`` ``；`` (the drift seen in
outputs). A value or piece is located at its first occurrence in the text (``str.find``), as
is once whitespace-stripped, else trimmed of surrounding quotes and punctuation; one that is in
neither form is ungrounded. ``None``/``none``/``无`` alone and blank pieces are no value at all.
"""

from __future__ import annotations

import re

from parsers.normalize import is_none_marker, trim
from parsers.spans import Span

__all__ = ["Grounded", "ground_value", "locate"]

SPLIT_LEVELS = (re.compile(r"\t+"), re.compile(r"[，,、;；]+"))

Grounded = tuple[list[Span], list[str]]
"""Spans found in the text, and the (stripped) values that were not found."""


def ground_value(value: str, text: str) -> Grounded:
    """Locate a generated value in ``text``: its spans and its ungrounded pieces."""
    return _ground(value, text, 0)


def _ground(value: str, text: str, level: int) -> Grounded:
    """Ground a value whole, else split it at ``level`` or a later one and ground the pieces."""
    value = value.strip()
    if not value or is_none_marker(value):
        return [], []
    span = locate(value, text)
    if span is not None:
        return [span], []
    for depth in range(level, len(SPLIT_LEVELS)):
        pieces = SPLIT_LEVELS[depth].split(value)
        if len(pieces) > 1:
            spans: list[Span] = []
            missing: list[str] = []
            for piece in pieces:
                found, lost = _ground(piece, text, depth + 1)
                spans += found
                missing += lost
            return spans, missing
    return [], [value]


def locate(value: str, text: str) -> Span | None:
    """The first occurrence in ``text`` of ``value``, else of ``value`` trimmed, else None."""
    for form in (value, trim(value)):
        start = text.find(form) if form else -1
        if start >= 0:
            return Span(form, start, start + len(form))
    return None
