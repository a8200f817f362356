"""Classification parser: which labels of the requested set a SeqGPT generation names.

SeqGPT answers a classification prompt with the label text, sometimes several labels joined by
``，`` or ``,``. Matching, first rule that finds anything wins:

1. The whole answer (see ``normalize.clean_generation``) is one label.
2. The answer read left to right as pieces separated by ``，`` ``,`` ``、`` ``;`` ``；`` tab and
   newline: every piece that is a label, in generated order. Requested labels are matched
   whole before the answer is split: at the start of a piece (start of the answer, or right
   after separators) the piece is the longest text that names a label and ends at a separator
   or at the end of the answer, so "文化、艺术，体育" gives "文化、艺术" and "体育", never
   "艺术" even when "艺术" is requested too. Where no label fits, the piece runs to the next
   separator.
3. Fallback: labels occurring inside the answer, ordered by first occurrence. Longer labels are
   preferred: a label is dropped where it overlaps an occurrence of a longer one, so with labels
   "体育" and "体育新闻" the answer "体育新闻" gives only "体育新闻". A label that starts (ends)
   with an ASCII letter or digit must not touch one there, so "A" is not found in "Art".

A piece matches a label when it equals the stripped label, as is or trimmed of surrounding
quotes and punctuation; exact case is tried before ASCII case-insensitive matching (and
preferred at the same position in the fallback). Labels are compared stripped, as the prompt
builder strips them, but the result holds the caller's label strings: never anything outside
the set, no duplicates. A label that is blank once stripped is never matched.

A cut-short answer (``complete=False``: the generation stopped on its token budget) is read
only up to its last separator: the trailing piece may be the prefix of a longer label ("体" of
"体育"), so it is dropped, and the three rules above see only the finished part. The cut moves
earlier when the answer from a piece start may be a label still being written: a proper prefix
of a label ("文化、艺" of "文化、艺术"), or a label holding a separator that no separator
follows yet ("Paris, France" with "Paris" requested too). A cut-short single answer gives
nothing.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from parsers.normalize import TRIM_CHARS, ascii_lower, clean_generation, trim

__all__ = ["parse_classification"]

PIECE_SEPARATORS = re.compile(r"[，,、;；\t\r\n]+")
SEPARATOR = re.compile(r"[，,、;；\t\r\n]")


@dataclass(frozen=True, slots=True)
class _Labels:
    """The requested labels keyed by their stripped text, exactly and ASCII-case-folded."""

    keys: dict[str, str] = field(default_factory=dict)
    folded: dict[str, str] = field(default_factory=dict)
    longest: int = 0
    """Length of the longest key: a longer (trimmed) piece names no label."""

    @classmethod
    def of(cls, labels: Sequence[str]) -> _Labels:
        """Index labels by stripped text; the first label in request order wins a clash."""
        keys: dict[str, str] = {}
        folded: dict[str, str] = {}
        for label in labels:
            key = label.strip()
            if key:
                keys.setdefault(key, label)
                if key.isascii():
                    folded.setdefault(ascii_lower(key), label)
        return cls(keys, folded, max(map(len, keys), default=0))

    def match(self, piece: str) -> str | None:
        """The label a piece names exactly, else ASCII-case-insensitively, else None."""
        forms = (piece.strip(), trim(piece))
        for form in forms:
            if form in self.keys:
                return self.keys[form]
        for form in forms:
            if ascii_lower(form) in self.folded:
                return self.folded[ascii_lower(form)]
        return None

    def may_be_writing(self, rest: str) -> bool:
        """Whether a cut-short answer from a piece start on may be a label still being written."""
        for form in (rest.lstrip(), rest.lstrip(TRIM_CHARS)):
            folded = ascii_lower(form)
            if form and (
                any(key != form and key.startswith(form) for key in self.keys)
                or any(key != folded and key.startswith(folded) for key in self.folded)
            ):
                return True
        return not _ends_with_separator(rest) and self.match(rest) is not None


@dataclass(frozen=True, slots=True, order=True)
class _Occurrence:
    """A label found inside the answer; sorts longest first, exact case before folded."""

    neg_length: int
    folded: bool
    start: int
    rank: int
    label: str = field(compare=False)


def parse_classification(
    generated: str, labels: Sequence[str], *, complete: bool = True
) -> list[str]:
    """Return the labels of ``labels`` named in ``generated``, in generated order, no duplicates.

    ``complete=False`` says the generation was cut short: its unfinished tail names no label.
    """
    index = _Labels.of(labels)
    answer = clean_generation(generated)
    if not complete:
        answer = _finished(answer, index)
    answer = answer.strip()
    if not answer or not index.keys:
        return []
    whole = index.match(answer)
    if whole is not None:
        return [whole]
    named = _unique(_pieces(answer, index))
    return named or _labels_inside(answer, index)


def _finished(answer: str, index: _Labels) -> str:
    """The finished part of a cut-short answer: it ends right after a separator."""
    starts = [0] + [match.end() for match in PIECE_SEPARATORS.finditer(answer)]
    cut = starts[-1]
    # From the end back, as long as the rest could still be one label; the earliest start wins.
    for start in reversed(starts[:-1]):
        rest = answer[start:]
        if len(trim(rest)) > index.longest:
            break
        if index.may_be_writing(rest):
            cut = start
    return answer[:cut]


def _ends_with_separator(text: str) -> bool:
    """Whether ``text`` ends with a separator, once spaces after it are set aside."""
    last = max(len(text.rstrip()) - 1, 0)
    return SEPARATOR.search(text, last) is not None


def _pieces(answer: str, index: _Labels) -> Iterator[str | None]:
    """The label each piece of the answer names (None for none), left to right."""
    ends = [match.start() for match in SEPARATOR.finditer(answer)] + [len(answer)]
    start = 0
    while start < len(answer):
        separators = PIECE_SEPARATORS.match(answer, start)
        if separators is not None:
            start = separators.end()
            continue
        label, start = _piece_at(answer, start, ends, index)
        yield label


def _piece_at(answer: str, start: int, ends: list[int], index: _Labels) -> tuple[str | None, int]:
    """The label of the piece at ``start`` and its end: the longest label, else to a separator.

    ``ends`` are the offsets of every separator, then the answer's length.
    """
    candidates = ends[bisect_right(ends, start) :]
    found = index.match(answer[start : candidates[0]]), candidates[0]
    for end in candidates[1:]:
        piece = answer[start:end]
        # The trimmed piece only grows with ``end``: once too long, no later end can match.
        if len(trim(piece)) > index.longest:
            break
        label = index.match(piece)
        if label is not None:
            found = label, end
    return found


def _unique(labels: Iterator[str | None]) -> list[str]:
    """Drop Nones and repeats, keeping first occurrences in order."""
    return list(dict.fromkeys(label for label in labels if label is not None))


def _labels_inside(answer: str, index: _Labels) -> list[str]:
    """Labels occurring in the answer, longest preferred on overlap, by first occurrence."""
    taken: set[int] = set()
    kept: list[tuple[int, str]] = []
    for occurrence in sorted(_occurrences(answer, index)):
        start = occurrence.start
        positions = range(start, start - occurrence.neg_length)
        if taken.isdisjoint(positions):
            taken.update(positions)
            kept.append((start, occurrence.label))
    kept.sort(key=lambda item: item[0])
    return _unique(label for _, label in kept)


def _occurrences(answer: str, index: _Labels) -> Iterator[_Occurrence]:
    """Every bounded occurrence of every label key, exact and ASCII-case-folded."""
    folded_answer = ascii_lower(answer)
    searches = [(answer, key, label, False) for key, label in index.keys.items()]
    searches += [(folded_answer, key, label, True) for key, label in index.folded.items()]
    for rank, (haystack, key, label, folded) in enumerate(searches):
        for start in _find_all(haystack, key):
            if _is_bounded(answer, start, start + len(key)):
                yield _Occurrence(-len(key), folded, start, rank, label)


def _find_all(haystack: str, needle: str) -> Iterator[int]:
    """Start offsets of every (possibly overlapping) occurrence of a non-empty needle."""
    start = haystack.find(needle)
    while start >= 0:
        yield start
        start = haystack.find(needle, start + 1)


def _is_bounded(answer: str, start: int, end: int) -> bool:
    """Whether ``answer[start:end]`` does not run into an ASCII word on either side."""
    before = answer[start - 1] if start > 0 else ""
    after = answer[end] if end < len(answer) else ""
    return not (_is_word_char(before) and _is_word_char(answer[start])) and not (
        _is_word_char(after) and _is_word_char(answer[end - 1])
    )


def _is_word_char(char: str) -> bool:
    """ASCII letters and digits: the characters that make an English word."""
    return char.isascii() and char.isalnum()
