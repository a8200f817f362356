"""Grounding: turn a value the model generated for a label into spans of the input text.

A value is looked up as a whole before it is split, so "北京，上海" stays one span when the
text contains "北京，上海". Otherwise it is split on tabs (SeqGPT's separator between spans),
and each piece that is still not found on ``，`` ``,`` ``、`` ``;`` ``；`` (the drift seen in
outputs). A value or piece is looked up as is once whitespace-stripped, else trimmed of
surrounding quotes and punctuation; one that is in neither form is ungrounded.
``None``/``none``/``无`` alone and blank pieces are no value at all.

A grounded value yields every mention of it: all its non-overlapping occurrences in the text,
left to right, because the model names an entity once however often the text repeats it.
Some of those occurrences may sit inside a longer span of the same request ("北京" inside
"北京大学"); ``drop_nested_spans`` removes them once all of a request's spans are known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parsers.normalize import is_none_marker, trim
from parsers.spans import Span

__all__ = ["Grounded", "drop_nested_spans", "ground_value", "locate_all"]

SPLIT_LEVELS = (re.compile(r"\t+"), re.compile(r"[，,、;；]+"))

Grounded = tuple[list[Span], list[str]]
"""Spans found in the text, and the (stripped) values that were not found."""


def ground_value(value: str, text: str) -> Grounded:
    """Locate a generated value in ``text``: the spans of every mention, and unfound pieces."""
    return _ground(value, text, 0)


def _ground(value: str, text: str, level: int) -> Grounded:
    """Ground a value whole, else split it at ``level`` or a later one and ground the pieces."""
    value = value.strip()
    if not value or is_none_marker(value):
        return [], []
    spans = locate_all(value, text)
    if spans:
        return spans, []
    for depth in range(level, len(SPLIT_LEVELS)):
        pieces = SPLIT_LEVELS[depth].split(value)
        if len(pieces) > 1:
            missing: list[str] = []
            for piece in pieces:
                found, lost = _ground(piece, text, depth + 1)
                spans += found
                missing += lost
            return spans, missing
    return [], [value]


def locate_all(value: str, text: str) -> list[Span]:
    """Every non-overlapping occurrence in ``text`` of ``value``, else of ``value`` trimmed."""
    for form in (value, trim(value)):
        spans = [Span(form, start, start + len(form)) for start in _find_all(text, form)]
        if spans:
            return spans
    return []


def _find_all(text: str, needle: str) -> Iterator[int]:
    """Start offsets of the non-overlapping occurrences of ``needle``, none when it is empty."""
    start = text.find(needle) if needle else -1
    while start >= 0:
        yield start
        start = text.find(needle, start + len(needle))


def drop_nested_spans(fields: dict[str, list[Span]]) -> dict[str, list[Span]]:
    """Drop every span lying inside a strictly longer span of any label; keep keys and order.

    A span is dropped when some other span in ``fields`` (under the same label or another)
    covers its offsets and is longer. The same offsets under two labels are both kept: the
    model gave both labels, and nothing says which one is right.
    """
    intervals = {(span.start, span.end) for spans in fields.values() for span in spans}
    nested: set[tuple[int, int]] = set()
    max_end = -1
    # By start, longest first: an interval is nested iff an earlier (distinct) one reaches its end.
    for start, end in sorted(intervals, key=lambda interval: (interval[0], -interval[1])):
        if max_end >= end:
            nested.add((start, end))
        max_end = max(max_end, end)
    return {
        label: [span for span in spans if (span.start, span.end) not in nested]
        for label, spans in fields.items()
    }
