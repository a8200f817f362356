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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prompts import split_labels
from serving.batch.files import BatchFileError, Key, Row, read_rows, row_key
from serving.batch.input_records import DEFAULT_MAX_ROW_BYTES
from serving.batch.metrics import (
    classification_metrics,
    extraction_metrics,
    flatten_fields,
    wrong_fields,
)

__all__ = ["GOLD_FIELDS", "PREDICTIONS", "Evaluation", "GoldError", "evaluate", "read_gold"]

GOLD_FIELDS = {"classify": ("label", "labels"), "extract": ("fields",)}
"""The fields of a row that hold its gold answer, per task."""
PREDICTIONS = "predictions.jsonl"
"""The batch run's OUTPUT, in the report folder."""

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


def read_gold(
    path: Path, task: str, multi_label: bool, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
) -> dict[Key, Gold]:
    """The gold answer of every readable row of INPUT, by row key; ``GoldError`` at the first
    row without a usable one (unreadable rows are left to the run: they become error rows)."""
    gold: dict[Key, Gold] = {}
    for row in read_rows(path, max_row_bytes, keep=GOLD_FIELDS[task]):
        if isinstance(row, Row):
            answer = _classification_gold(row, multi_label) if task == "classify" else None
            gold[row_key(row)] = answer if answer is not None else _extraction_gold(row)
    return gold


@dataclass
class Evaluation:
    """The scores of a finished run, and the rows behind them."""

    task: str
    multi_label: bool
    rows: int
    metrics: dict[str, Any]
    wrong: list[dict[str, Any]] = field(default_factory=list)
    """Rows whose answer is not the gold one: row, id, request_id, gold, predicted (, fields)."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Rows the run answered with an error: row, id, request_id, type, message."""

    def document(self) -> dict[str, Any]:
        """What ``metrics.json`` holds."""
        counts = {"rows": self.rows, "scored": self.rows - len(self.errors)}
        counts |= {"errors": len(self.errors), "wrong": len(self.wrong)}
        return {"task": self.task, "multi_label": self.multi_label, **counts, **self.metrics}


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
    task: str, multi_label: bool, labels: str | None, gold: Mapping[Key, Gold], predictions: Path
) -> Evaluation:
    """Score the answers in ``predictions`` (a finished run's OUTPUT) against ``gold``."""
    pairs: list[tuple[dict[str, Any], Gold, Gold]] = []
    errors: list[dict[str, Any]] = []
    with predictions.open(encoding="utf-8") as lines:
        for line in lines:
            answer = json.loads(line)
            where = {k: answer.get(k) for k in ("row", "id", "request_id")}
            key: Key = (
                ("row", str(answer["row"])) if answer["id"] is None else ("id", str(answer["id"]))
            )
            if "error" in answer or key not in gold:
                error = answer.get("error") or {"type": "NoGold", "message": "No gold answer."}
                errors.append(where | {"type": error.get("type"), "message": error.get("message")})
            else:
                pairs.append((where, gold[key], _predicted(task, answer)))
    pairs.sort(key=lambda pair: pair[0]["row"])
    errors.sort(key=lambda row: row["row"])
    golds, predicted = [g for _, g, _ in pairs], [p for _, _, p in pairs]
    rows = len(pairs) + len(errors)
    if task == "extract":
        flat = [(flatten_fields(g), flatten_fields(p)) for _, g, p in pairs]  # type: ignore[arg-type]
        scores = extraction_metrics([g for g, _ in flat], [p for _, p in flat])
        wrong = [
            where | {"gold": g, "predicted": p, "fields": bad}
            for (where, g, p), (flat_g, flat_p) in zip(pairs, flat, strict=True)
            if (bad := wrong_fields(flat_g, flat_p))
        ]
    else:
        label_set = _labels(labels) or ()
        scores = classification_metrics(golds, predicted, label_set, multi_label)  # type: ignore[arg-type]
        wrong = [
            where | {"gold": list(g), "predicted": list(p)}
            for where, g, p in pairs
            if set(g) != set(p)
        ]
    return Evaluation(task, multi_label, rows, scores, wrong, errors)
