"""Clean-up shared by the parsers: what is noise in a SeqGPT generation, and how to compare.

- ``</s>`` ends the answer: anything after it is trailing garbage.
- ``<s>``, ``<pad>`` and ``<unk>`` are removed wherever they appear.
- ``[GEN]`` is plain text in the prompt, so the model may echo it (alone, or with the whole
  prompt before it): the answer is the last piece after a ``[GEN]`` that is not blank.
- Case folding is ASCII only (A-Z to a-z), so it never changes a string's length and offsets
  computed on the folded string hold on the original.
"""

from __future__ import annotations

import string

__all__ = ["ascii_lower", "clean_generation", "is_none_marker", "trim"]

EOS = "</s>"
GEN_MARKER = "[GEN]"
NOISE_TOKENS = ("<s>", "<pad>", "<unk>")
NONE_MARKERS = frozenset({"none", "无"})
# Wrapping characters a model adds around a value: quotes, brackets and sentence punctuation.
TRIM_CHARS = (
    string.whitespace
    + "\u3000"
    + "\"'`“”‘’「」『』《》〈〉()（）[]【】<>"
    + ".,;:!?。，；：！？、…·-—~～"
)
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def clean_generation(generated: str) -> str:
    """Return the answer part of a generation: before ``</s>``, after a ``[GEN]`` echo."""
    answer = generated.split(EOS, 1)[0]
    for token in NOISE_TOKENS:
        answer = answer.replace(token, "")
    pieces = [piece for piece in answer.split(GEN_MARKER) if piece.strip()]
    return pieces[-1] if pieces else ""


def ascii_lower(value: str) -> str:
    """Lower-case ASCII letters only; the result has the same length as ``value``."""
    return value.translate(_ASCII_LOWER)


def trim(value: str) -> str:
    """Strip surrounding whitespace, quotes, brackets and punctuation until none is left."""
    previous = None
    while previous != value:
        previous = value
        value = value.strip().strip(TRIM_CHARS)
    return value


def is_none_marker(value: str) -> bool:
    """Whether a value is the model's way of saying "no span" (``None``, ``none``, ``无``)."""
    return ascii_lower(trim(value)) in NONE_MARKERS
