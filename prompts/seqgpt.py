"""SeqGPT's prompt format, byte for byte, and the guards that keep it intact.

The official code (Alibaba-NLP/SeqGPT ``inference.py``) builds::

    输入: {text}\n{task}: {labels}\n输出: [GEN]

with ``task`` = ``分类`` (classification) or ``抽取`` (extraction), the text stripped and the
labels joined with the full-width comma ``，``. Extraction sends the labels in ``ceil(n / 6)``
nearly equal chunks (numpy ``array_split``: the first ``n mod k`` chunks get one more label).

Injection. The model reads the prompt as lines; a text holding a line that starts with one of
the template's keys (``输入`` ``分类`` ``抽取`` ``输出``, ASCII or full-width colon) or the
marker ``[GEN]`` could forge a second instruction or answer. We neutralise only those: a key at
the start of a line inside the text (after optional blanks) gets a zero-width space (U+200B)
before it, so the line no longer starts with the key, and ``[GEN]`` becomes ``[GEN\u200b]``.
A line starts after any break ``str.splitlines`` knows (``\r``, ``\x0b``, ``\x0c``,
``\x1c``-``\x1e``, ``\x85``, U+2028, U+2029 as well as ``\n``): SeqGPT's tokenizer breaks
lines only at ``\n``, but whatever shows, logs or re-tokenizes the prompt may honour the
others. Ordinary text is untouched, so ordinary prompts are byte-identical to the official ones.
Labels are validated instead of rewritten: a label holding a line break, a comma (either width)
or a template key line is rejected, since it would change the label set the model sees.

Duplicates. Duplicate labels (after stripping) are dropped, keeping the first occurrence:
SeqGPT gains nothing from reading a label twice and a parser cannot tell the copies apart.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

__all__ = [
    "GEN_MARKER",
    "MAX_LABEL_CHARS",
    "LabelError",
    "build_classify_prompt",
    "build_extract_prompts",
    "chunk_labels",
    "neutralize_text",
    "parse_labels",
    "split_labels",
    "unicode_error",
    "validate_labels",
]

GEN_MARKER = "[GEN]"
MAX_LABEL_CHARS = 64
CLASSIFY_TASK = "分类"
EXTRACT_TASK = "抽取"
LABEL_SEPARATOR = "，"
ZERO_WIDTH_SPACE = "\u200b"

_TEMPLATE_KEYS = ("输入", "输出", CLASSIFY_TASK, EXTRACT_TASK)
# Every line boundary of str.splitlines(), as a regex character-class body.
_BREAKS = r"\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029"
_LINE_BREAK = re.compile(rf"[{_BREAKS}]")
# Blanks that may stand before a key or its colon: any whitespace that is not a line break.
_BLANK = rf"[^\S{_BREAKS}]"
# A line of the text that starts (after optional blanks) with a template key and a colon.
_KEY_LINE = re.compile(
    rf"(?:\A|(?<=[{_BREAKS}]))({_BLANK}*)(?=(?:{'|'.join(_TEMPLATE_KEYS)}){_BLANK}*[:：])"
)
_LABEL_SPLIT = re.compile(r"[,，]")


class LabelError(ValueError):
    """A label set that would break SeqGPT's prompt format."""


def split_labels(labels: str | Sequence[str]) -> list[str]:
    """The raw label items: ``"财经,体育，娱乐"`` split on either comma, or the list as given."""
    return _LABEL_SPLIT.split(labels) if isinstance(labels, str) else list(labels)


def parse_labels(labels: str | Sequence[str]) -> list[str]:
    """Turn ``"财经,体育，娱乐"`` (or a list) into validated, stripped, de-duplicated labels."""
    return validate_labels(split_labels(labels))


def validate_labels(labels: Sequence[str]) -> list[str]:
    """Strip labels, drop duplicates (first kept) and reject any that would break the format."""
    if isinstance(labels, str):
        raise LabelError("Labels must be a list of strings.")
    cleaned: dict[str, None] = {}  # ordered and O(1) membership: linear in the label count
    for position, raw in enumerate(labels):
        if not isinstance(raw, str):
            raise LabelError(f"Label {position} is not a string.")
        label = raw.strip()
        if not label:
            raise LabelError(f"Label {position} is empty.")
        if len(label) > MAX_LABEL_CHARS:
            raise LabelError(f"Label {position} is longer than {MAX_LABEL_CHARS} characters.")
        if _LINE_BREAK.search(label) or _LABEL_SPLIT.search(label):
            raise LabelError(f"Label {position} ({_shown(label)}) holds a line break or a comma.")
        if GEN_MARKER in label or _KEY_LINE.match(label):
            raise LabelError(f"Label {position} ({_shown(label)}) holds a prompt template key.")
        cleaned.setdefault(label)
    if not cleaned:
        raise LabelError("At least one label is required.")
    return list(cleaned)


def _shown(label: str) -> str:
    """A label as JSON shows it, so a line break reads as an escape."""
    return json.dumps(label, ensure_ascii=False)


def neutralize_text(text: str) -> str:
    """Strip the text and defuse template keys at line starts and the ``[GEN]`` marker."""
    text = _KEY_LINE.sub(lambda m: m.group(1) + ZERO_WIDTH_SPACE, text.strip())
    return text.replace(GEN_MARKER, f"[GEN{ZERO_WIDTH_SPACE}]")


def _build(task: str, text: str, labels: Sequence[str]) -> str:
    joined = LABEL_SEPARATOR.join(labels)
    return f"输入: {neutralize_text(text)}\n{task}: {joined}\n输出: {GEN_MARKER}"


def build_classify_prompt(text: str, labels: Sequence[str]) -> str:
    """The one classification prompt for ``text`` over all ``labels``."""
    return _build(CLASSIFY_TASK, text, validate_labels(labels))


def chunk_labels(labels: Sequence[str], chunk_size: int = 6) -> list[list[str]]:
    """Split labels into ``ceil(n / chunk_size)`` nearly equal chunks (numpy ``array_split``)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    count = math.ceil(len(labels) / chunk_size)
    if count == 0:
        return []
    base, extra = divmod(len(labels), count)
    chunks: list[list[str]] = []
    start = 0
    for index in range(count):
        end = start + base + (1 if index < extra else 0)
        chunks.append(list(labels[start:end]))
        start = end
    return chunks


def build_extract_prompts(text: str, labels: Sequence[str], chunk_size: int = 6) -> list[str]:
    """One extraction prompt per label chunk, in label order."""
    chunks = chunk_labels(validate_labels(labels), chunk_size)
    return [_build(EXTRACT_TASK, text, chunk) for chunk in chunks]


def unicode_error(value: str, what: str) -> str | None:
    """A sentence when ``value`` holds an unpaired surrogate (it cannot be UTF-8), else None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"The {what} holds an invalid character (an unpaired surrogate) at position "
            f"{exc.start}; send valid Unicode."
        )
    return None
