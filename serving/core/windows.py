"""Long documents: overlapping windows of whole sentences, and their answers mapped back.

A text whose prompt does not fit one prompt's token budget is sent as several windows, each a
slice ``text[start:end]`` of the original text, each answered on its own; the answers are then
combined here. Pure functions: token counts come from a ``count`` callable (the server's real
tokenizer), so nothing here imports vLLM or a tokenizer.

Rules:

- **Sentences.** A sentence ends after a run of ``。！？`` or a line break, or after a run of
  ``.!?`` followed by whitespace or the end of the text (so ``3.14`` and ``U.S.A`` are not
  ends); closing quotes and brackets after the run stay with the sentence, and so does the
  whitespace after it. The sentences cover the text exactly, with no gap and no overlap.
- **Long sentences.** A sentence over ``piece`` tokens is cut into pieces of at most ``piece``
  tokens (``piece`` is the overlap when it is smaller than the window, else the window), at a
  character boundary, preferring a blank or a comma in the piece's second half.
- **Packing.** A window takes whole units (sentences or pieces) while their token counts sum to
  at most the budget. The next window starts with the last units of the previous one, as many
  as sum to at most ``overlap`` tokens (at most half the budget), and always ends beyond it.
- **Spans.** Each window's spans are shifted by the window's start, so ``text[start:end]`` is
  the span in the original text; a span found by two windows (in their overlap) is kept once,
  then ``drop_nested_spans`` applies across the document. A value yields every mention in the
  window that named it; ``ungrounded`` lists the values that occur nowhere in their window.
- **Classification.** One label: each window votes for the label it names; the label with the
  most votes wins, a tie going to the label voted for first (earliest window); windows naming
  none abstain. Several labels: every label any window names, in the order first named.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from parsers import Extraction, Span, drop_nested_spans

__all__ = [
    "Window",
    "merge_extractions",
    "plan_windows",
    "split_sentences",
    "union_labels",
    "vote_label",
]

Count = Callable[[str], int]
"""Tokens of a piece of text (no special tokens added)."""

_CLOSERS = re.escape("\"'”’」』）)】》]")
_SENTENCE_END = re.compile(
    rf"(?:[。！？]+[{_CLOSERS}]*|[.!?]+[{_CLOSERS}]*(?=\s|\Z)|[\n\r\u2028\u2029\x85])\s*"
)
_SOFT_BREAK = re.compile(r"[\s,，、;；:：]")
_FILL = 0.9  # a cut piece's first guess fills this share of its budget


@dataclass(frozen=True, slots=True)
class Window:
    """One window of a text: ``text[start:end]``."""

    start: int
    end: int


def split_sentences(text: str) -> list[tuple[int, int]]:
    """The sentences of ``text`` as ``(start, end)`` offsets, covering it exactly, in order."""
    bounds, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            bounds.append((start, match.end()))
            start = match.end()
    if start < len(text):
        bounds.append((start, len(text)))
    return bounds


def plan_windows(text: str, budget: int, overlap: int, count: Count) -> list[Window]:
    """Overlapping windows of at most ``budget`` tokens (by ``count``) covering ``text``.

    A text within the budget is one window, the whole text.
    """
    if budget < 1:
        raise ValueError("budget must be at least 1")
    overlap = max(0, min(overlap, budget // 2))
    piece = overlap if 0 < overlap < budget else budget
    units: list[tuple[int, int]] = []
    sizes: list[int] = []
    for start, end in split_sentences(text):
        size = count(text[start:end])
        if size <= piece:
            units.append((start, end))
            sizes.append(size)
            continue
        for cut in _cut(text, start, end, size, piece, count):
            units.append(cut[:2])
            sizes.append(cut[2])
    if sum(sizes) <= budget:
        return [Window(0, len(text))]
    return [Window(units[s][0], units[e - 1][1]) for s, e in _pack(sizes, budget, overlap)]


def _cut(
    text: str, start: int, end: int, size: int, piece: int, count: Count
) -> list[tuple[int, int, int]]:
    """Pieces ``(start, end, tokens)`` of ``text[start:end]`` of at most ``piece`` tokens."""
    pieces = []
    chars_per_token = (end - start) / max(size, 1)
    while start < end:
        stop = min(end, start + max(1, int(piece * chars_per_token * _FILL)))
        if stop < end:
            stop = _soft_stop(text, start, stop)
        tokens = count(text[start:stop])
        while tokens > piece and stop - start > 1:
            stop = start + max(1, (stop - start) * 3 // 4)
            tokens = count(text[start:stop])
        pieces.append((start, stop, tokens))
        start = stop
    return pieces


def _soft_stop(text: str, start: int, stop: int) -> int:
    """``stop`` moved back to just after a blank or comma in the second half, if there is one."""
    half = start + (stop - start) // 2
    for position in range(stop - 1, half, -1):
        if _SOFT_BREAK.match(text, position):
            return position + 1
    return stop


def _pack(sizes: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Windows as unit ranges ``[s, e)``: each within budget, overlapping, each reaching further."""
    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        end, total = start, 0
        while end < len(sizes) and total + sizes[end] <= budget:
            total += sizes[end]
            end += 1
        end = max(end, start + 1)  # a unit is never over the budget; one is always taken
        windows.append((start, end))
        if end == len(sizes):
            return windows
        # Carry the previous window's last units, leaving room for the next new unit.
        carried, next_start = 0, end
        while (
            next_start - 1 > start
            and carried + sizes[next_start - 1] <= overlap
            and carried + sizes[next_start - 1] + sizes[end] <= budget
        ):
            next_start -= 1
            carried += sizes[next_start]
        start = next_start


def merge_extractions(parts: Sequence[tuple[int, Extraction]]) -> Extraction:
    """One extraction from windows' ``(offset, extraction)``: spans shifted into the text.

    Labels keep their first order; a label's spans are deduplicated by offsets and sorted by
    start; spans inside a longer span of any label are dropped; ungrounded values are kept once.
    """
    found: dict[str, dict[tuple[int, int], Span]] = {}
    ungrounded: dict[str, dict[str, None]] = {}
    for offset, extraction in parts:
        for label, spans in extraction.fields.items():
            into = found.setdefault(label, {})
            for span in spans:
                start, end = span.start + offset, span.end + offset
                into.setdefault((start, end), Span(span.text, start, end))
        for label, values in extraction.ungrounded.items():
            ungrounded.setdefault(label, {}).update(dict.fromkeys(values))
    fields = {label: [spans[key] for key in sorted(spans)] for label, spans in found.items()}
    return Extraction(
        fields=drop_nested_spans(fields),
        ungrounded={label: list(values) for label, values in ungrounded.items()},
    )


def vote_label(named: Sequence[Sequence[str]]) -> list[str]:
    """The single label of several windows' answers: a majority vote, ties to the first voted.

    ``named[i]`` is what window ``i`` named (its first label is its vote). One window's answer
    is returned as it is.
    """
    if len(named) == 1:
        return list(named[0])
    votes = [labels[0] for labels in named if labels]
    if not votes:
        return []
    tally = Counter(votes)
    best = max(tally.values())
    return [next(label for label in votes if tally[label] == best)]


def union_labels(named: Sequence[Sequence[str]]) -> list[str]:
    """Every label any window named, in the order first named (earliest window first)."""
    return list(dict.fromkeys(label for labels in named for label in labels))
