"""``seqgpt-serve eval INPUT --task classify|extract -o REPORT_DIR``: accuracy on labelled rows.

A batch run (the same job, engines, options, progress bar and resume as ``classify`` and
``extract``: ``serving.cli.batch``) whose OUTPUT is ``REPORT_DIR/predictions.jsonl``, then the
scoring (``serving.batch.evaluate``) and the report (``serving.batch.report``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from serving.cli.batch import run_job, schema_file
from serving.cli.common import fail
from serving.cli.options import (
    INPUT,
    LABELS,
    MULTI_LABEL,
    SCHEMA,
    RunOptions,
    with_run_options,
)

__all__ = ["EVAL_HELP", "add_eval_command"]

TASKS = ("classify", "extract")
EVAL_HELP = "\n\n".join(
    [
        "Run the model over every row of INPUT and score its answers against the rows' gold "
        "answers: a report in REPORT_DIR.",
        "INPUT is JSONL (or CSV, by its .csv extension) as for the classify and extract "
        "commands, each row with its gold answer: --task classify: 'label' (one label) or "
        "'labels' (a list or a comma string; several only with --multi-label), the label set "
        "being --labels; --task extract: 'fields', an object {field: [span text, ...]} (JSON "
        "in a CSV column), the fields asked being --labels or the row's own 'labels', or the "
        "tree of --schema FILE (as for the extract command): then a gold span may nest its "
        'children as the answer does, {"text": "张三", "fields": {"职位": [...]}}, '
        "and every field path is scored (人物, 人物.职位: a child matches only under a "
        "matching parent). A row without a gold answer stops the command before any work, "
        "naming the row.",
        "REPORT_DIR gets predictions.jsonl (the batch run's output: each row's answer and "
        "request id; Ctrl-C stops cleanly and the same command resumes), then metrics.json, "
        "report.md (scores, per-label or per-field tables, the first 1000 wrong rows with "
        "their row number and request id and how many more, error rows apart) and "
        "confusion.png (classification) or fields.png "
        "(extraction). Classification: accuracy, micro and macro precision, recall and F1, "
        "per-label rows, confusion matrix. Extraction: per-field, micro and macro precision, "
        "recall and F1, exact (equal text) and overlap (a shared substring at least half the "
        "longer span) matching. Rows the run answered with an error are not scored.",
        "The engine and its options are those of the classify and extract commands.",
        "Exit status: 0 with the report written; 1 when the run could not go on; 2 for a usage, "
        "file or gold-answer error; 130 after Ctrl-C.",
    ]
)
_REPORT_DIR = Annotated[
    Path,
    typer.Option(
        "--output", "-o", metavar="REPORT_DIR", help="Folder for the report (made if missing)."
    ),
]
_TASK = Annotated[str, typer.Option(metavar="TASK", help="classify or extract.")]


def add_eval_command(app: typer.Typer) -> None:
    """Register ``eval`` on ``app``."""
    app.command("eval", help=EVAL_HELP)(with_run_options(evaluate_command))


def evaluate_command(
    input_file: INPUT,
    output: _REPORT_DIR,
    task: _TASK,
    labels: LABELS = None,
    schema: SCHEMA = None,
    multi_label: MULTI_LABEL = False,
    *,
    run: RunOptions,
) -> None:
    """Score the model on labelled rows (help: EVAL_HELP)."""
    if schema is not None and task != "extract":
        fail("--schema is for --task extract")
    tree = schema_file(schema, labels)
    raise typer.Exit(_eval(task, multi_label, input_file, output, labels, tree, run))


def _check(
    task: str, multi_label: bool, input_file: Path, folder: Path, labels: str | None
) -> None:
    """The eval's own usage errors, before the batch's."""
    if task not in TASKS:
        fail(f"--task must be one of {', '.join(TASKS)}, not {task!r}")
    if multi_label and task != "classify":
        fail("--multi-label is for --task classify")
    if task == "classify" and labels is None:
        fail("--task classify needs --labels (a row's 'labels' is its gold answer here)")
    if not input_file.is_file():
        fail(f"{input_file} is not a file")
    if folder.exists() and not folder.is_dir():
        fail(f"{folder} is not a folder")


def _eval(
    task: str,
    multi_label: bool,
    input_file: Path,
    folder: Path,
    labels: str | None,
    schema: dict[str, Any] | None,
    run: RunOptions,
) -> int:
    """Check, read the gold answers, run the batch into ``folder``, score, report."""
    # the batch job and eval's scoring: only when eval runs, not for --help.
    from serving.batch.evaluate import PREDICTIONS, evaluate, read_gold
    from serving.batch.files import BatchFileError
    from serving.batch.input_records import DEFAULT_MAX_ROW_BYTES
    from serving.batch.report import check_report, write_report

    _check(task, multi_label, input_file, folder, labels)
    try:  # before any engine work: a missing gold answer, a foreign report file end it here
        check_report(folder, task)
        gold = read_gold(input_file, task, multi_label, run.max_row_bytes or DEFAULT_MAX_ROW_BYTES)
    except BatchFileError as exc:
        fail(str(exc))
    with contextlib.closing(gold):
        status = _run(task, multi_label, input_file, folder, labels, schema, run)
        if status != 0:
            return status
        evaluation = evaluate(task, multi_label, labels, gold, folder / PREDICTIONS)
    try:
        write_report(folder, evaluation)
    except BatchFileError as exc:  # a file put in the report's place during the run
        fail(str(exc))
    typer.echo(f"report: {folder / 'report.md'} ({_headline(evaluation.document())})", err=True)
    return 0


def _run(
    task: str,
    multi_label: bool,
    input_file: Path,
    folder: Path,
    labels: str | None,
    schema: dict[str, Any] | None,
    run: RunOptions,
) -> int:
    """The batch run whose OUTPUT is the folder's predictions; its exit status."""
    # as in _eval.
    from serving.batch.evaluate import PREDICTIONS

    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    name = "classify_multi" if multi_label else task
    # Classification's rows carry their gold in 'labels': the label set is --labels alone.
    own_labels = task != "classify"
    try:
        return run_job(
            name, input_file, folder / PREDICTIONS, labels, schema, run, own_labels=own_labels
        )
    finally:
        if made and not any(folder.iterdir()):
            folder.rmdir()  # a usage error of the run leaves nothing behind


def _headline(document: dict[str, Any]) -> str:
    """The scores of the summary line."""
    counts = f"{document['scored']} rows scored, {document['errors']} errors"
    if document["task"] == "extract":
        exact, overlap = document["exact"]["micro"]["f1"], document["overlap"]["micro"]["f1"]
        return f"micro F1 {exact:.4f} exact, {overlap:.4f} overlap; {counts}"
    accuracy, macro = document["accuracy"], document["macro"]["f1"]
    return f"accuracy {accuracy:.4f}, macro F1 {macro:.4f}; {counts}"
