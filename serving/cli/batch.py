"""``seqgpt-serve classify|extract INPUT -o OUTPUT``: a batch job over every row of a file.

The commands check their options and run the job (``serving.batch``) against a running server
(``--url``) here, or against vLLM in a child process (``--model``). Both commands share one body;
``classify`` alone takes ``--multi-label``.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from serving.cli.common import fail, hide_keys_from_process_list
from serving.process.server import DEFAULT_MAX_MODEL_LEN

__all__ = ["BATCH_HELP", "add_batch_commands"]

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
_INPUT = Annotated[
    Path, typer.Argument(metavar="INPUT", help="JSONL or .csv file, one row per text.")
]
_OUTPUT = Annotated[
    Path,
    typer.Option(
        "--output", "-o", metavar="OUTPUT", help="JSONL file to append results to (resumed)."
    ),
]
_LABELS = Annotated[
    str | None,
    typer.Option(help='Labels for rows without their own, e.g. "财经,体育,娱乐".'),
]
_MODEL = Annotated[
    str | None,
    typer.Option(
        metavar="DIR", help="Run vLLM here on this model folder or hub id.", show_default=False
    ),
]
_URL = Annotated[
    str | None,
    typer.Option(metavar="URL", help="Send rows to this server, e.g. http://localhost:8000."),
]
_API_KEY = Annotated[
    str | None,
    typer.Option(metavar="KEY", envvar="VLLM_API_KEY", help="The server's key (with --url)."),
]
_CONCURRENCY = Annotated[
    int | None,
    typer.Option(min=1, help="Rows in flight (default: the engine's max-num-seqs; 64 with --url)."),
]
_MAX_ROW_BYTES = Annotated[
    int | None,
    typer.Option(
        min=1,
        metavar="BYTES",
        help="Rows longer than this (a JSONL line, a CSV record, line end included) are 413 "
        "error rows, skipped without being read whole. Default: room for a text of "
        "SEQGPT_MAX_TEXT_CHARS characters at 12 bytes each (its longest JSON spelling) plus "
        "1 MiB; 2248576 for the default 100,000.",
        show_default=False,
    ),
]
_DTYPE = Annotated[
    str | None,
    typer.Option(
        help="--model: weights dtype: auto, bfloat16, float16, float32 (default: as the "
        "server, on the CPU backend bfloat16 where the CPU has native bf16, else float32).",
        show_default=False,
    ),
]
_MAX_MODEL_LEN = Annotated[
    int | None,
    typer.Option(
        min=16,
        help=f"--model: context in tokens (default {DEFAULT_MAX_MODEL_LEN}, as the server); "
        "a row whose prompt does not fit is a row error.",
        show_default=False,
    ),
]
_MAX_NUM_SEQS = Annotated[
    int | None, typer.Option(min=1, help="--model: engine batch size (default: vLLM's).")
]
_EAGER = Annotated[
    bool | None,
    typer.Option(
        "--enforce-eager",
        help="--model: skip torch.compile (starts in ~30 s, not ~90 s; runs ~7 % slower).",
        show_default=False,
    ),
]
_DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")


_SCHEMA = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help='A JSON file holding an extraction schema, e.g. {"人物": ["职位", "就职于"]}, '
        "sent instead of labels for every row (a row's own labels are then ignored).",
        show_default=False,
    ),
]
_MULTI_LABEL = Annotated[
    bool, typer.Option("--multi-label", help="Every label the model names, not one.")
]
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
        input_file: _INPUT,
        output: _OUTPUT,
        labels: _LABELS = None,
        schema: _SCHEMA = None,
        multi_label: _MULTI_LABEL = False,
        model: _MODEL = None,
        url: _URL = None,
        api_key: _API_KEY = None,
        concurrency: _CONCURRENCY = None,
        max_row_bytes: _MAX_ROW_BYTES = None,
        dtype: _DTYPE = None,
        max_model_len: _MAX_MODEL_LEN = None,
        max_num_seqs: _MAX_NUM_SEQS = None,
        enforce_eager: _EAGER = None,
    ) -> None:
        name = "classify_multi" if multi_label else task
        tree = _schema_file(schema, labels)
        engine = {"dtype": dtype, "max_model_len": max_model_len, "max_num_seqs": max_num_seqs}
        engine["enforce_eager"] = enforce_eager
        options = (labels, model, url, api_key, concurrency, max_row_bytes, engine, tree)
        raise typer.Exit(_batch(name, input_file, output, *options))

    command.__doc__ = f"{_ROUTES[task][0]} every row of a file (help: BATCH_HELP)."
    # typer reads the options from the signature: --multi-label for classify, --schema extract
    dropped = "multi_label" if task != "classify" else "schema"
    signature = inspect.signature(command, eval_str=True)
    kept = [p for name, p in signature.parameters.items() if name != dropped]
    command.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    return command


def _schema_file(path: Path | None, labels: str | None) -> dict[str, Any] | None:
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


def _batch(
    task: str,
    input_file: Path,
    output: Path,
    labels: str | None,
    model: str | None,
    url: str | None,
    api_key: str | None,
    concurrency: int | None,
    max_row_bytes: int | None,
    engine: dict[str, Any],
    schema: dict[str, Any] | None = None,
    own_labels: bool = True,
) -> int:
    """Check the options, then run the batch here (--url) or in a child (--model).

    ``own_labels=False``: rows' ``labels`` are not their label sets (``eval``'s gold answers)."""
    from serving.batch.child import engine_problems, run_in_child
    from serving.batch.input_records import default_max_row_bytes
    from serving.core.settings import Settings
    from serving.process.launcher import settings_errors

    if (model is None) == (url is None):
        fail("pass --model DIR (vLLM in this process) or --url URL (a running server), one of them")
    flags = {name: value for name, value in engine.items() if value is not None}
    if url is not None and flags:
        given = ", ".join("--" + name.replace("_", "-") for name in flags)
        fail(f"{given} set the in-process engine: use them with --model, not --url")
    if url is not None and not url.startswith(("http://", "https://")):
        fail(f"--url must start with http:// or https://, not {url!r}")
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
        options = (labels, url, api_key, concurrency, max_row_bytes, schema)
        return _batch_remote(task, input_file, output, *options, own_labels=own_labels)
    # vLLM reads its log level when it is imported, in the child.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    job: dict[str, Any] = {"task": task, "input": str(input_file), "output": str(output)}
    job |= {"labels": labels, "concurrency": concurrency, "max_row_bytes": max_row_bytes}
    job |= {"schema": schema, "own_labels": own_labels}
    return run_in_child(job, model or "", flags)


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
) -> int:
    from serving.batch.job import BatchJob, run_batch
    from serving.batch.remote import http_source

    if api_key is not None:
        hide_keys_from_process_list([api_key])
    job = BatchJob(task, input_file, output, labels, concurrency, max_row_bytes, schema, own_labels)
    return run_batch(job, http_source(url, api_key, concurrency))
