"""Extraction parser: the spans a SeqGPT generation gives for each requested label.

SeqGPT answers an extraction prompt with one line per label, ``label: value``. Reading rules:

- A line counts when, after leading whitespace, it starts with a requested label (stripped, as
  the prompt builder strips labels) followed by optional whitespace and an ASCII ``:`` or
  full-width ``：`` colon. Longer labels are tried first, so a label may itself contain a colon;
  exact case is tried before ASCII case-insensitive matching. The value is the rest of the line
  after that colon, so values may contain colons ("时间: 10:30").
- Lines for labels outside the set, and lines without such a prefix, are ignored.
- A label named on several lines gets the spans of all of them.
- Values are grounded in the text by ``parsers.grounding``: spans are always slices of the
  text, one per mention (every non-overlapping occurrence of the value); values that do not
  occur there go to ``Extraction.ungrounded``, never to the fields. Spans of a label are
  deduplicated by offsets and sorted by start offset, ungrounded values deduplicated by text.
- A span lying inside a strictly longer span of the result, under any label, is dropped
  (``drop_nested_spans``): "北京" for 地点 is not reported inside "北京大学" given for 机构.
  Callers merging several prompts of one request apply ``drop_nested_spans`` to the merge.
- A cut-short generation (``complete=False``: it stopped on its token budget) has its last
  line, the one being written when the budget ran out, ignored entirely: its value is neither
  a span nor ungrounded. A generation ending with a line break loses nothing.
- Every requested label is a key of the fields, in request order (repeats collapsed), with an
  empty list when the model said ``None``, nothing or an empty value.
"""

from __future__ import annotations

from collections.abc import Sequence

from parsers.grounding import drop_nested_spans, ground_value
from parsers.normalize import ascii_lower, clean_generation
from parsers.spans import Extraction, Span

__all__ = ["parse_extraction", "parse_extraction_detailed"]

COLONS = (":", "：")


def parse_extraction(
    generated: str, labels: Sequence[str], text: str, *, complete: bool = True
) -> dict[str, list[Span]]:
    """Return the spans of ``text`` that ``generated`` gives for each label of ``labels``."""
    return parse_extraction_detailed(generated, labels, text, complete=complete).fields


def parse_extraction_detailed(
    generated: str, labels: Sequence[str], text: str, *, complete: bool = True
) -> Extraction:
    """Return the spans for each label, and the generated values that ``text`` lacks.

    ``complete=False`` says the generation was cut short, so its unterminated last line is
    ignored.
    """
    requested = list(dict.fromkeys(labels))
    keys = sorted(
        ((label.strip(), label) for label in requested if label.strip()),
        key=lambda pair: -len(pair[0]),
    )
    # Keyed by offsets (spans) and by text (ungrounded values): dedupe in linear time, since a
    # short value may have thousands of mentions.
    found: dict[str, dict[tuple[int, int], Span]] = {label: {} for label in requested}
    ungrounded: dict[str, dict[str, None]] = {label: {} for label in requested}
    answered: dict[str, None] = {}
    for line in _finished_lines(clean_generation(generated), complete):
        matched = _split_line(line, keys)
        if matched is None:
            continue
        label, value = matched
        answered.setdefault(label)
        spans, missing = ground_value(value, text)
        for span in spans:
            found[label].setdefault((span.start, span.end), span)
        ungrounded[label].update(dict.fromkeys(missing))
    fields = {label: [spans[key] for key in sorted(spans)] for label, spans in found.items()}
    return Extraction(
        fields=drop_nested_spans(fields),
        ungrounded={label: list(values) for label, values in ungrounded.items() if values},
        answered=tuple(answered),
    )


def _finished_lines(answer: str, complete: bool) -> list[str]:
    """The lines of the answer, without the unterminated last one when it was cut short."""
    lines = answer.splitlines(keepends=True)
    if not complete and lines and lines[-1].splitlines()[0] == lines[-1]:
        lines.pop()
    return [line.splitlines()[0] for line in lines]


def _split_line(line: str, keys: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The label a line is about and its value, or None when it is about no requested label."""
    head = line.lstrip()
    folded_head = ascii_lower(head)
    for folded in (False, True):
        for key, label in keys:
            if folded and not key.isascii():
                continue
            starts = folded_head.startswith(ascii_lower(key)) if folded else head.startswith(key)
            rest = head[len(key) :].lstrip() if starts else ""
            if rest[:1] in COLONS:
                return label, rest[1:]
    return None
