"""``seqgpt-serve classify|extract INPUT -o OUTPUT``: a batch job over every row of a file.

The commands check their options and run the job (``serving.batch``) against a running server
(``--url``) here, or against vLLM in a child process (``--model``). Both commands share one body;
``classify`` alone takes ``--multi-label``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from serving.cli.common import fail
from serving.cli.options import (
    INPUT,
    LABELS,
    MULTI_LABEL,
    SCHEMA,
    RunOptions,
    with_run_options,
)

__all__ = ["BATCH_HELP", "add_batch_commands", "run_job", "schema_file"]

BATCH_HELP = "\n\n".join(
    [
        "{what} every row of INPUT and append one JSON line per row to OUTPUT.",
        "INPUT is JSONL (or CSV, by its .csv extension, with a header row): a text field per row, "
        "an optional id (else the row's 1-based line number; CSV: record number) and optional "
        "labels (a list or a comma string) that override --labels.",
        "OUTPUT lines hold the row's id, its row number, its request id (the X-Request-Id in the "
        "server's request log) and the REST answer of {route} ({fields}), "
        "or an error in the API's error body for that row alone (a bad row, a duplicate id: the "
        "run goes on; a row over --max-row-bytes is a 413 error row, skipped without being read "
        "whole). Lines are written as rows complete. Ctrl-C stops cleanly; run the same "
        "command again to resume: rows already in OUTPUT are skipped.",
        "The engine: --model DIR runs vLLM in this process with the server's SeqGPT code and "
        "SEQGPT_* settings (first start ~30 s to minutes; engine flags below; its log at "
        "VLLM_LOGGING_LEVEL, default ERROR here), or --url URL sends each row to a running "
        "server or Kubernetes Service (429 and 503 are retried after Retry-After).",
        "Exit status: 0 when every row has its line (error rows included); 1 when the run could "
        "not go on (key refused, engine or server gone); 2 for a usage or file error; 130 after "
        "Ctrl-C.",
    ]
)
_OUTPUT = Annotated[
    Path,
    typer.Option(
        "--output", "-o", metavar="OUTPUT", help="JSONL file to append results to (resumed)."
    ),
]
_DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
_ROUTES = {
    "classify": ("Classify", "/v1/classify", "label, labels, truncated, usage"),
    "extract": ("Extract the fields of", "/v1/extract", "fields, ungrounded, truncated, usage"),
}


def add_batch_commands(app: typer.Typer) -> None:
    """Register ``classify`` and ``extract`` on ``app``: one command body, two tasks."""
    for task, (what, route, fields) in _ROUTES.items():
        help_text = BATCH_HELP.format(what=what, route=route, fields=fields)
        app.command(task, help=help_text)(_command(task))


def _command(task: str) -> Callable[..., None]:
    """The batch command of ``task``; only ``classify`` has ``--multi-label``."""

    def command(
        input_file: INPUT,
        output: _OUTPUT,
        labels: LABELS = None,
        schema: SCHEMA = None,
        multi_label: MULTI_LABEL = False,
        *,
        run: RunOptions,
    ) -> None:
        name = "classify_multi" if multi_label else task
        tree = schema_file(schema, labels)
        raise typer.Exit(run_job(name, input_file, output, labels, tree, run))

    command.__doc__ = f"{_ROUTES[task][0]} every row of a file (help: BATCH_HELP)."
    # typer reads the options from the signature: --multi-label for classify, --schema extract
    return with_run_options(command, drop=("multi_label" if task != "classify" else "schema",))


def schema_file(path: Path | None, labels: str | None) -> dict[str, Any] | None:
    """The schema of ``--schema FILE`` (a JSON object; the server checks the tree), or None."""
    if path is None:
        return None
    if labels is not None:
        fail("pass --labels or --schema, not both")
    try:
        tree = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"--schema {path}: not a readable JSON file ({exc})")
    if not isinstance(tree, dict) or not tree:
        fail(f"--schema {path}: the schema must be a non-empty JSON object")
    return tree


def run_job(
    task: str,
    input_file: Path,
    output: Path,
    labels: str | None,
    schema: dict[str, Any] | None,
    run: RunOptions,
    own_labels: bool = True,
) -> int:
    """Check the options, then run the batch here (--url) or in a child (--model).

    ``own_labels=False``: rows' ``labels`` are not their label sets (``eval``'s gold answers)."""
    # vLLM's checks: only for --model.
    from serving.batch.child import engine_problems, run_in_child
    from serving.batch.input_records import default_max_row_bytes
    from serving.core.settings import Settings
    from serving.process.launcher import settings_errors

    model, url, max_row_bytes = run.model, run.url, run.max_row_bytes
    if (model is None) == (url is None):
        fail("pass --model DIR (vLLM in this process) or --url URL (a running server), one of them")
    flags = _check_where(run)
    if flags.get("dtype", "auto") not in _DTYPES:
        fail(f"--dtype must be one of {', '.join(_DTYPES)}, not {flags['dtype']!r}")
    if url is None:
        problems = engine_problems(model or "", os.environ)
    else:  # the default row limit reads SEQGPT_MAX_TEXT_CHARS
        problems = settings_errors(dict(os.environ)) if max_row_bytes is None else []
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        return 2
    if max_row_bytes is None:  # this environment's text limit: with --url, set it as the server's
        max_row_bytes = default_max_row_bytes(Settings().max_text_chars)
    if url is not None:
        options = (labels, url, run.api_key, run.concurrency, max_row_bytes, schema)
        priority = run.priority or "batch"
        return _batch_remote(
            task, input_file, output, *options, own_labels=own_labels, priority=priority
        )
    # vLLM reads its log level when it is imported, in the child.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    job: dict[str, Any] = {"task": task, "input": str(input_file), "output": str(output)}
    job |= {"labels": labels, "concurrency": run.concurrency, "max_row_bytes": max_row_bytes}
    job |= {"schema": schema, "own_labels": own_labels}
    return run_in_child(job, model or "", flags)


def _check_where(run: RunOptions) -> dict[str, Any]:
    """Fail on options of the other way to run (--model's with --url, --url's with --model);
    the in-process engine's flags that are set."""
    url = run.url
    flags = {name: value for name, value in (run.engine or {}).items() if value is not None}
    if url is not None and flags:
        given = ", ".join("--" + name.replace("_", "-") for name in flags)
        fail(f"{given} set the in-process engine: use them with --model, not --url")
    if url is None and run.priority is not None:
        fail("--priority ranks the rows a server is sent: use it with --url, not --model")
    if run.priority not in (None, "batch", "interactive"):
        fail(f"--priority must be batch or interactive, not {run.priority!r}")
    if url is not None and not url.startswith(("http://", "https://")):
        fail(f"--url must start with http:// or https://, not {url!r}")
    return flags


def _batch_remote(
    task: str,
    input_file: Path,
    output: Path,
    labels: str | None,
    url: str,
    api_key: str | None,
    concurrency: int | None,
    max_row_bytes: int,
    schema: dict[str, Any] | None = None,
    own_labels: bool = True,
    priority: str = "batch",
) -> int:
    # the batch job and its engines: only when a job runs, not for --help.
    from serving.batch.job import BatchJob, run_batch
    from serving.batch.remote import http_source

    job = BatchJob(task, input_file, output, labels, concurrency, max_row_bytes, schema, own_labels)
    return run_batch(job, http_source(url, api_key, concurrency, priority))
