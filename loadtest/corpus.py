"""The load-test corpus (``corpus.jsonl``) and the request bodies built from it.

Each entry is a hand-written text (news, reviews, contracts, tickets, ...; Chinese or English;
short or long) with a label set for classification and one for extraction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from prompts import build_classify_prompt

__all__ = [
    "CORPUS_PATH",
    "Entry",
    "classify_body",
    "completion_body",
    "extract_body",
    "load_corpus",
]

CORPUS_PATH = Path(__file__).with_name("corpus.jsonl")


@dataclass(frozen=True)
class Entry:
    """One corpus text with its label sets."""

    id: str
    language: str
    kind: str
    text: str
    classify_labels: tuple[str, ...]
    extract_labels: tuple[str, ...]


@cache
def load_corpus(path: Path = CORPUS_PATH) -> tuple[Entry, ...]:
    """All entries of the corpus file, in file order."""
    entries = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                row["classify_labels"] = tuple(row["classify_labels"])
                row["extract_labels"] = tuple(row["extract_labels"])
                entries.append(Entry(**row))
    return tuple(entries)


def classify_body(entry: Entry, *, multi_label: bool = False) -> dict[str, Any]:
    """A ``POST /v1/classify`` body for ``entry``."""
    return {"text": entry.text, "labels": list(entry.classify_labels), "multi_label": multi_label}


def extract_body(entry: Entry) -> dict[str, Any]:
    """A ``POST /v1/extract`` body for ``entry``."""
    return {"text": entry.text, "labels": list(entry.extract_labels)}


def completion_body(
    entry: Entry, *, model: str, max_tokens: int, stream: bool = False
) -> dict[str, Any]:
    """A ``POST /v1/completions`` body: the entry's SeqGPT classification prompt, greedy."""
    return {
        "model": model,
        "prompt": build_classify_prompt(entry.text, entry.classify_labels),
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": stream,
    }
