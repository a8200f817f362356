"""``seqgpt-serve eval``'s scoring streams: memory does not grow with the rows (gold answers on
disk, answers read a line at a time and paired by row number, scores as counts), and the report
lists the first wrong rows and counts the rest."""

from __future__ import annotations

import json
import random
import tracemalloc
from pathlib import Path

from serving.batch.evaluate import evaluate, read_gold
from serving.batch.report import render

LABELS = "财经,体育,娱乐"
NAMES = LABELS.split(",")


def _files(folder: Path, rows: int) -> tuple[Path, Path]:
    """INPUT with ``rows`` labelled rows, and a finished run's answers in a shuffled order
    (completion order): every third row wrong, every seventh an error."""
    folder.mkdir()
    source, predictions = folder / "rows.jsonl", folder / "predictions.jsonl"
    with source.open("w", encoding="utf-8") as out:
        for n in range(1, rows + 1):
            row = {"id": f"row-{n}", "text": f"文本 {n}", "label": NAMES[n % 3]}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    order = list(range(1, rows + 1))
    random.Random(rows).shuffle(order)
    with predictions.open("w", encoding="utf-8") as out:
        for n in order:
            answer: dict[str, object] = {"id": f"row-{n}", "row": n, "request_id": f"batch-{n}"}
            if n % 7 == 0:
                answer["error"] = {"type": "BadRequestError", "message": "Row text is empty."}
            else:
                answer["label"] = NAMES[(n + (n % 3 == 0)) % 3]
            out.write(json.dumps(answer, ensure_ascii=False) + "\n")
    return source, predictions


def _peak(folder: Path, rows: int) -> int:
    source, predictions = _files(folder, rows)
    tracemalloc.start()
    try:
        gold = read_gold(source, "classify", False)
        try:
            evaluation = evaluate("classify", False, LABELS, gold, predictions, listed=50)
        finally:
            gold.close()
        render(evaluation, "confusion.png")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_ten_times_the_rows_take_about_the_same_memory(tmp_path: Path) -> None:
    small, large = _peak(tmp_path / "small", 3_000), _peak(tmp_path / "large", 30_000)
    # Holding every row (as before) took about ten times as much: here it is the same bound.
    assert large < 1.3 * small + 64 * 1024, (small, large)


def test_the_report_lists_the_first_wrong_rows_and_counts_the_rest(tmp_path: Path) -> None:
    source, predictions = _files(tmp_path / "run", 300)
    gold = read_gold(source, "classify", False)
    try:
        evaluation = evaluate("classify", False, LABELS, gold, predictions, listed=5)
    finally:
        gold.close()
    wrong = [n for n in range(1, 301) if n % 3 == 0 and n % 7 != 0]
    errors = [n for n in range(1, 301) if n % 7 == 0]
    assert [row["row"] for row in evaluation.wrong] == wrong[:5]
    assert [row["row"] for row in evaluation.errors] == errors[:5]
    document = evaluation.document()
    assert (document["wrong"], document["errors"]) == (len(wrong), len(errors))
    assert document["scored"] == 300 - len(errors)
    assert document["accuracy"] == (300 - len(errors) - len(wrong)) / (300 - len(errors))
    text = render(evaluation, "confusion.png")
    assert f"## Wrong rows ({len(wrong)})" in text
    assert f"… and {len(wrong) - 5} more wrong rows" in text
    assert f"… and {len(errors) - 5} more error rows" in text
    assert "| 6 | row-6 | batch-6 |" in text
    assert f"| {wrong[5]} | row-{wrong[5]} |" not in text
