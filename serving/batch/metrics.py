"""Scores of predictions against gold answers: pure functions, no I/O (``seqgpt-serve eval``).

Classification (``classification_metrics``): each row is its gold labels and the labels the model
named (one each in single-label runs; the model may name none). Per label: precision, recall, F1
and support (rows whose gold holds the label); micro (counts summed over labels) and macro
(per-label scores averaged, F1 as the mean of the per-label F1s); accuracy (rows whose predicted
set equals the gold set: subset accuracy when multi-label). Zero over zero is 0. The labels
scored are the label set given, then any other label a row names, sorted. These are
scikit-learn's ``accuracy_score``, ``precision_recall_fscore_support(labels=...)`` and
``confusion_matrix`` on the same rows (``tests/unit/batch/test_metrics.py``). The confusion
matrix is gold × predicted with a last column for "no label" (single-label); multi-label runs
get scikit-learn's per-label 2 × 2 ``[[tn, fp], [fn, tp]]`` instead.

Extraction (``extraction_metrics``): each row is, per field, the gold span texts and the predicted
ones. Two ways a predicted span matches a gold span of the same field (each span matches at most
one other, and the most matches are found):

- ``exact``: the texts are equal once stripped of surrounding white space.
- ``overlap``: the gold answers give span texts, not offsets, so overlap is judged on text: the
  longest substring the two texts share is at least half as long as the longer of them (北京 and
  北京市 match, 张三 and 张三丰 match; two long spans sharing one character do not). An exact
  match is always an overlap match.

Per field: precision = matches / predicted spans, recall = matches / gold spans, F1; micro over
all fields' counts; macro the mean over fields that have a gold or a predicted span somewhere.

Nested answers (a schema's): ``flatten_fields`` turns them into field paths, each scored as a
field: ``人物`` (the top level) and ``人物.职位`` (the 职位 found for each 人物). A child span is
its text chained to its ancestors' texts, and it matches only when every text of the chain
matches (exactly, or by overlap), so a 职位 found under the wrong 人物 is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

__all__ = [
    "NO_LABEL",
    "ClassificationCounts",
    "ExtractionCounts",
    "classification_metrics",
    "extraction_metrics",
    "flatten_fields",
    "label_order",
    "matches",
    "prf",
    "spans_overlap",
    "wrong_fields",
]

PATH_SEPARATOR = "."
"""Joins the field names of a path: ``人物.职位``."""
_CHAIN = "\x1f"  # joins a child span's ancestors' texts and its own (U+001F is in no span text)
NO_LABEL = "(no label)"
"""The confusion matrix's column for rows where the model named no label."""

Labels = Sequence[str]
Fields = Mapping[str, Sequence[str]]


def prf(tp: int, predicted: int, gold: int) -> dict[str, float]:
    """Precision, recall and F1 from counts; zero over zero is 0 (scikit-learn's default)."""
    precision = tp / predicted if predicted else 0.0
    recall = tp / gold if gold else 0.0
    total = precision + recall
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / total if total else 0.0,
    }


def label_order(
    label_set: Labels, gold: Sequence[Labels], predicted: Sequence[Labels]
) -> list[str]:
    """The labels scored: ``label_set`` in its order, then any other label named, sorted."""
    given = list(dict.fromkeys(label_set))
    seen = {label for row in (*gold, *predicted) for label in row}
    return given + sorted(seen - set(given))


class ClassificationCounts:
    """The counts behind ``classification_metrics``, one row at a time: memory grows with the
    labels named, never with the rows (a million-row eval streams its rows through ``add``)."""

    def __init__(self, label_set: Labels, multi_label: bool) -> None:
        self.label_set, self.multi_label = list(label_set), multi_label
        self.rows = self.exact = 0
        self.tp, self.named, self.support = Counter[str](), Counter[str](), Counter[str]()
        self.pairs = Counter[tuple[str, str | None]]()  # single-label (gold, predicted or None)

    def add(self, gold: Labels, predicted: Labels) -> None:
        """Count one row: its gold labels and the labels the model named."""
        self.rows += 1
        self.exact += set(gold) == set(predicted)
        self.support.update(set(gold))
        self.named.update(set(predicted))
        self.tp.update(set(gold) & set(predicted))
        if not self.multi_label:
            self.pairs[gold[0], predicted[0] if predicted else None] += 1

    def result(self) -> dict[str, Any]:
        """Accuracy, micro and macro P/R/F1, per-label rows and the confusion matrix."""
        labels = label_order(self.label_set, [list(self.support)], [list(self.named)])
        per_label = [
            {"label": label, **prf(self.tp[label], self.named[label], self.support[label])}
            | {"support": self.support[label]}
            for label in labels
        ]
        tp, named = sum(self.tp[x] for x in labels), sum(self.named[x] for x in labels)
        return {
            "accuracy": self.exact / self.rows if self.rows else 0.0,
            "micro": prf(tp, named, sum(self.support[x] for x in labels)),
            "macro": _macro(per_label),
            "labels": per_label,
            "confusion": self._confusion(labels),
        }

    def _confusion(self, labels: list[str]) -> dict[str, Any]:
        if self.multi_label:  # per label [[tn, fp], [fn, tp]], as multilabel_confusion_matrix
            per_label = {}
            for label in labels:
                tp, fp = self.tp[label], self.named[label] - self.tp[label]
                fn = self.support[label] - tp
                per_label[label] = [[self.rows - tp - fp - fn, fp], [fn, tp]]
            return {"per_label": per_label}
        columns = [*labels, NO_LABEL]
        matrix = [[self.pairs[gold, predicted] for predicted in [*labels, None]] for gold in labels]
        return {"gold": labels, "predicted": columns, "matrix": matrix}


def classification_metrics(
    gold: Sequence[Labels], predicted: Sequence[Labels], label_set: Labels, multi_label: bool
) -> dict[str, Any]:
    """Accuracy, micro and macro P/R/F1, per-label rows and the confusion matrix of the rows."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted must have one entry per row")
    counts = ClassificationCounts(label_set, multi_label)
    for g, p in zip(gold, predicted, strict=True):
        counts.add(g, p)
    return counts.result()


def _macro(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The mean of the rows' precision, recall and F1 (0 with no rows)."""
    return {
        key: sum(row[key] for row in rows) / len(rows) if rows else 0.0
        for key in ("precision", "recall", "f1")
    }


def spans_overlap(predicted: str, gold: str) -> bool:
    """Whether two span texts overlap: their longest shared substring is at least half as long
    as the longer text (both stripped; an empty one matches nothing)."""
    a, b = predicted.strip(), gold.strip()
    if not a or not b:
        return False
    shared = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return 2 * shared.size >= max(len(a), len(b))


def _exact(predicted: str, gold: str) -> bool:
    return predicted.strip() == gold.strip() != ""


def _chained(match: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    """``match`` applied to every text of two spans' chains (a top-level span is one text)."""

    def chained(predicted: str, gold: str) -> bool:
        a, b = predicted.split(_CHAIN), gold.split(_CHAIN)
        return len(a) == len(b) and all(map(match, a, b))

    return chained


MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "exact": _chained(_exact),
    "overlap": _chained(spans_overlap),
}


def flatten_fields(fields: Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
    """Nested fields by field path. A span is a text or ``{"text": ..., "fields": {...}}`` (the
    API's span shape; ``fields`` null or missing: no children); a child's span comes out as its
    text chained to its ancestors' texts (see the module's docstring)."""
    flat: dict[str, list[str]] = {}

    def walk(level: Mapping[str, Sequence[Any]], path: str, chain: tuple[str, ...]) -> None:
        for name, spans in level.items():
            key = f"{path}{PATH_SEPARATOR}{name}" if path else name
            found = flat.setdefault(key, [])
            for span in spans or ():  # None: a field not expanded
                text = (span if isinstance(span, str) else span["text"]).strip()
                if text:
                    found.append(_CHAIN.join((*chain, text)))
                children = None if isinstance(span, str) else span.get("fields")
                if text and children:
                    walk(children, key, (*chain, text))

    walk(fields, "", ())
    return flat


def matches(
    predicted: Sequence[str], gold: Sequence[str], match: Callable[[str, str], bool]
) -> int:
    """The most predicted spans that can each be paired with a distinct gold span they match
    (a maximum bipartite matching, by augmenting paths: the lists of one field are short)."""
    partner: dict[int, int] = {}  # gold index -> predicted index

    def place(i: int, tried: set[int]) -> bool:
        for j, span in enumerate(gold):
            if j in tried or not match(predicted[i], span):
                continue
            tried.add(j)
            if j not in partner or place(partner[j], tried):
                partner[j] = i
                return True
        return False

    return sum(place(i, set()) for i in range(len(predicted)))


class ExtractionCounts:
    """The counts behind ``extraction_metrics``, one row at a time: memory grows with the
    fields, never with the rows."""

    def __init__(self) -> None:
        self.counts = {name: dict[str, Counter[str]]() for name in MATCHERS}
        self.rows = 0

    def add(self, gold: Fields, predicted: Fields) -> None:
        """Count one row's spans, per field (flattened: ``flatten_fields``)."""
        self.rows += 1
        fields = {f for row in (gold, predicted) for f, spans in row.items() if _kept(spans)}
        for field in fields:
            gold_spans, predicted_spans = (
                _kept(gold.get(field, [])),
                _kept(predicted.get(field, [])),
            )
            for name, match in MATCHERS.items():
                counts = self.counts[name].setdefault(field, Counter[str]())
                counts["tp"] += matches(predicted_spans, gold_spans, match)
                counts.update(predicted=len(predicted_spans), gold=len(gold_spans))

    def result(self) -> dict[str, Any]:
        """Per-field, micro and macro P/R/F1, for exact and for overlap matching."""
        fields = sorted(self.counts["exact"])
        scores: dict[str, Any] = {"fields": fields}
        for name, by_field in self.counts.items():
            per_field = [
                {
                    "field": f,
                    **prf(by_field[f]["tp"], by_field[f]["predicted"], by_field[f]["gold"]),
                }
                | {"matched": by_field[f]["tp"]}
                | {"predicted": by_field[f]["predicted"], "gold": by_field[f]["gold"]}
                for f in fields
            ]
            totals = sum(by_field.values(), Counter[str]())
            micro = prf(totals["tp"], totals["predicted"], totals["gold"])
            scores[name] = {"micro": micro, "macro": _macro(per_field), "per_field": per_field}
        return scores


def extraction_metrics(gold: Sequence[Fields], predicted: Sequence[Fields]) -> dict[str, Any]:
    """Per-field, micro and macro P/R/F1 of the rows, for exact and for overlap matching."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted must have one entry per row")
    counts = ExtractionCounts()
    for g, p in zip(gold, predicted, strict=True):
        counts.add(g, p)
    return counts.result()


def _kept(spans: Sequence[str]) -> list[str]:
    """The spans that count: stripped, empty ones left out."""
    return [span.strip() for span in spans if span.strip()]


def wrong_fields(gold: Fields, predicted: Fields) -> list[str]:
    """The fields of one row whose predicted spans are not exactly the gold ones (as multisets)."""
    names = {f for f, s in (*gold.items(), *predicted.items()) if _kept(s)}
    return sorted(
        f for f in names if Counter(_kept(gold.get(f, []))) != Counter(_kept(predicted.get(f, [])))
    )
