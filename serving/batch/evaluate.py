"""``seqgpt-serve eval``: a batch run over labelled rows, then its answers scored against the gold.

The run is a batch job (``serving.batch.job``) whose OUTPUT is ``predictions.jsonl`` in the
report folder, so it shows the same progress bar, stops and resumes the same way; once every row
has its line, ``evaluate`` pairs each answer with the row's gold answer and scores them
(``serving.batch.metrics``), and ``serving.batch.report`` writes the report.

Gold answers, read beside each row's request (``read_gold``, before any engine work):

- classification: ``label`` (one label) or ``labels`` (a list, or one comma-separated string).
  The row's ``labels`` is its gold answer here, never its label set: the set is ``--labels``.
  Without ``--multi-label`` each row has exactly one gold label; with it, any number (none too).
- extraction: ``fields``, an object ``{field: [span text, ...]}`` (a lone string is one span; in
  a CSV column, that object as JSON). A field left out has no gold span. For ``--schema`` runs a
  span may carry its children as the API's answer does, ``{"text": "张三", "fields": {"职位":
  ["技术总监"]}}``, to any depth; every field path is scored (``serving.batch.metrics``).

A row whose gold answer is missing or malformed stops the command before the run, naming the
row. A row the batch answered with an error (a bad text, a refusal of the server ...) is not a
wrong prediction: it is counted and listed apart, and left out of every score.

Memory does not grow with the rows: the gold answers wait on disk (``GoldAnswers``, SQLite's
temporary database), the answers are read one line at a time and each paired with its row's gold
by row number (answers are in completion order), the scores accumulate counts
(``serving.batch.metrics``), and only the first ``LISTED_ROWS`` wrong rows and error rows are
kept for the report, the others counted.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prompts import split_labels
from serving.batch.files import BatchFileError, Row, read_rows
from serving.batch.input_records import DEFAULT_MAX_ROW_BYTES
from serving.batch.metrics import (
    ClassificationCounts,
    ExtractionCounts,
    flatten_fields,
    wrong_fields,
)

__all__ = [
    "GOLD_FIELDS",
    "LISTED_ROWS",
    "PREDICTIONS",
    "Evaluation",
    "GoldAnswers",
    "GoldError",
    "evaluate",
    "read_gold",
]

GOLD_FIELDS = {"classify": ("label", "labels"), "extract": ("fields",)}
"""The fields of a row that hold its gold answer, per task."""
PREDICTIONS = "predictions.jsonl"
"""The batch run's OUTPUT, in the report folder."""
LISTED_ROWS = 1000
"""Wrong rows, and error rows, listed in the report (the first by row number; the rest counted)."""

Gold = tuple[str, ...] | dict[str, list[Any]]
"""Gold labels, or gold fields: ``{field: [span, ...]}``, a span a text or ``{text, fields}``."""


class GoldError(BatchFileError):
    """A row's gold answer is missing or malformed (the message names the row)."""


def _labels(value: Any) -> tuple[str, ...] | None:
    """Labels from a list of strings or a comma-separated string (None: neither)."""
    if isinstance(value, str):
        value = split_labels(value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))


def _classification_gold(row: Row, multi_label: bool) -> tuple[str, ...]:
    label, labels = row.kept.get("label"), row.kept.get("labels")
    gold: tuple[str, ...] | None
    if label not in (None, "") and labels not in (None, ""):
        raise GoldError(f"Row {row.number} has both 'label' and 'labels': give one gold answer.")
    if label not in (None, ""):
        gold = (label.strip(),) if isinstance(label, str) and label.strip() else None
    else:
        gold = _labels(labels) if labels is not None else None
        gold = () if gold is None and multi_label and labels == "" else gold
    if gold is None:
        raise GoldError(
            f"Row {row.number} has no gold answer: give 'label' (a string) or 'labels' "
            "(a list or a comma-separated string)."
        )
    if not multi_label and len(gold) != 1:
        raise GoldError(
            f"Row {row.number} has {len(gold)} gold labels, not one; pass --multi-label to "
            "evaluate multi-label classification."
        )
    return gold


def _extraction_gold(row: Row) -> dict[str, list[Any]]:
    value = row.kept.get("fields")
    if isinstance(value, str):  # a CSV column
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if value is None:
        raise GoldError(
            f"Row {row.number} has no gold answer: give 'fields' {{field: [span, ...]}}."
        )
    problem = f"Row {row.number}'s gold 'fields' must be an object {{field: [span text, ...]}}"
    if not isinstance(value, dict):
        raise GoldError(f"{problem}.")
    return _gold_fields(value, problem)


def _gold_fields(value: dict[str, Any], problem: str) -> dict[str, list[Any]]:
    """Checked gold fields; a span is a text or ``{"text": str, "fields": {...}}``."""
    gold: dict[str, list[Any]] = {}
    for name, spans in value.items():
        spans = [spans] if isinstance(spans, str) else spans
        if not isinstance(spans, list):
            spans = [None]
        for i, span in enumerate(spans):
            if isinstance(span, dict) and isinstance(span.get("text"), str):
                children = span.get("fields") or {}
                if isinstance(children, dict) and set(span) <= {"text", "fields"}:
                    spans[i] = {"text": span["text"], "fields": _gold_fields(children, problem)}
                    continue
            if not isinstance(span, str):
                raise GoldError(
                    f"{problem}; {name!r} is not a list of span texts (or of "
                    '{"text": span text, "fields": {...}} objects, for nested fields).'
                )
        gold[name.strip()] = spans
    return gold


class GoldAnswers:
    """Every row's gold answer by row number, kept on disk (SQLite's private temporary database,
    removed when closed), so that a million rows cost no more memory than ten."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a temporary file of SQLite's own, never in memory
        self._db.execute("CREATE TABLE gold (row INTEGER PRIMARY KEY, answer TEXT NOT NULL)")

    def add(self, row: int, answer: Gold) -> None:
        """Keep ``row``'s gold answer."""
        text = json.dumps(answer, ensure_ascii=False)
        self._db.execute("INSERT OR REPLACE INTO gold VALUES (?, ?)", (row, text))

    def get(self, row: int) -> Gold | None:
        """``row``'s gold answer (labels as a tuple), or None."""
        found = self._db.execute("SELECT answer FROM gold WHERE row = ?", (row,)).fetchone()
        if found is None:
            return None
        answer = json.loads(found[0])
        return tuple(answer) if isinstance(answer, list) else answer

    def close(self) -> None:
        """Drop the database."""
        self._db.close()


def read_gold(
    path: Path, task: str, multi_label: bool, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
) -> GoldAnswers:
    """The gold answer of every readable row of INPUT, by row number; ``GoldError`` at the first
    row without a usable one (unreadable rows are left to the run: they become error rows)."""
    gold = GoldAnswers()
    try:
        # By row number, so the ids seen need not be kept (a duplicate is an error row of the run).
        for row in read_rows(path, max_row_bytes, keep=GOLD_FIELDS[task], unique_ids=False):
            if isinstance(row, Row):
                answer = _classification_gold(row, multi_label) if task == "classify" else None
                gold.add(row.number, answer if answer is not None else _extraction_gold(row))
    except BaseException:
        gold.close()
        raise
    return gold


@dataclass
class Evaluation:
    """The scores of a finished run, the counts, and the first rows behind them."""

    task: str
    multi_label: bool
    rows: int
    metrics: dict[str, Any]
    wrong: list[dict[str, Any]] = field(default_factory=list)
    """The first wrong rows, by row number: row, id, request_id, gold, predicted (, fields)."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """The first rows the run answered with an error: row, id, request_id, type, message."""
    wrong_count: int = 0
    error_count: int = 0

    def document(self) -> dict[str, Any]:
        """What ``metrics.json`` holds."""
        counts = {"rows": self.rows, "scored": self.rows - self.error_count}
        counts |= {"errors": self.error_count, "wrong": self.wrong_count}
        return {"task": self.task, "multi_label": self.multi_label, **counts, **self.metrics}


class _FirstRows:
    """The ``limit`` rows of lowest row number among those added (a bounded heap)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.count, self._heap = limit, 0, list[tuple[int, dict[str, Any]]]()

    def add(self, row: dict[str, Any]) -> None:
        self.count += 1
        entry = (-row["row"], row)  # the heap's top is the highest row number kept
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, entry)
        elif self.limit and entry[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, entry)

    def rows(self) -> list[dict[str, Any]]:
        return [row for _, row in sorted(self._heap, key=lambda entry: -entry[0])]


def _spans(fields: Mapping[str, Any]) -> dict[str, list[Any]]:
    """An answer's fields in the gold's shape: a span's text, or text and children."""
    return {
        name: [
            {"text": s["text"], "fields": _spans(s["fields"])} if s.get("fields") else s["text"]
            for s in spans
        ]
        for name, spans in fields.items()
    }


def _predicted(task: str, answer: Mapping[str, Any]) -> Gold:
    if task == "extract":
        return _spans(answer["fields"])
    return tuple(answer.get("labels") or ([answer["label"]] if answer.get("label") else []))


def evaluate(
    task: str,
    multi_label: bool,
    labels: str | None,
    gold: GoldAnswers,
    predictions: Path,
    listed: int = LISTED_ROWS,
) -> Evaluation:
    """Score the answers in ``predictions`` (a finished run's OUTPUT) against ``gold``, one line
    at a time; the first ``listed`` wrong rows and error rows are kept, the others counted."""
    counts = ExtractionCounts() if task == "extract" else None
    label_counts = ClassificationCounts(_labels(labels) or (), multi_label)
    wrong, errors = _FirstRows(listed), _FirstRows(listed)
    with predictions.open(encoding="utf-8") as lines:
        for line in lines:
            answer = json.loads(line)
            where = {k: answer.get(k) for k in ("row", "id", "request_id")}
            expected = None if "error" in answer else gold.get(answer["row"])
            if expected is None:
                error = answer.get("error") or {"type": "NoGold", "message": "No gold answer."}
                errors.add(where | {"type": error.get("type"), "message": error.get("message")})
                continue
            predicted = _predicted(task, answer)
            if counts is not None:
                flat_g, flat_p = flatten_fields(expected), flatten_fields(predicted)  # type: ignore[arg-type]
                counts.add(flat_g, flat_p)
                if bad := wrong_fields(flat_g, flat_p):
                    wrong.add(where | {"gold": expected, "predicted": predicted, "fields": bad})
            else:
                label_counts.add(expected, predicted)  # type: ignore[arg-type]
                if set(expected) != set(predicted):
                    wrong.add(where | {"gold": list(expected), "predicted": list(predicted)})
    scores = counts.result() if counts is not None else label_counts.result()
    rows = (counts.rows if counts else label_counts.rows) + errors.count
    return Evaluation(
        task, multi_label, rows, scores, wrong.rows(), errors.rows(), wrong.count, errors.count
    )
