"""The ``seqgpt-serve`` command: ``serve`` (the launcher), ``status``, ``classify`` and
``extract`` (batch jobs over a file, ``serving.batch.job``) and ``make-test-model``.

Every user error is one line on stderr saying what to do, with exit status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from serving.cli import status as status_cli
from serving.process.server import DEFAULT_MAX_MODEL_LEN, DEFAULT_MODEL, SERVED_MODEL_NAME

__all__ = ["app", "main"]

APP_HELP = (
    "Serve the zero-shot NLU model SeqGPT-560M on vLLM (serve), say how a running server is "
    "doing (status), run it over every row of a file (classify, extract), or write a "
    "random-weight checkpoint with its architecture for offline "
    "tests and demos (make-test-model)."
)
SERVE_HELP = "\n\n".join(
    [
        "Start vLLM's OpenAI API server with the SeqGPT task endpoints (/v1/classify, "
        "/v1/extract), and stay its parent until it and its engine are gone.",
        "MODEL is a hub id or a local folder, given the ways vLLM takes it: positional "
        "(serve ./my-model), --model, or in a --config YAML file. Every other flag is vLLM's; "
        "list them with: .venv/bin/python -m vllm.entrypoints.launchers.api_server.entry --help",
        "Defaults added only where you set nothing (by flag or --config): model "
        f"{DEFAULT_MODEL}, --host 0.0.0.0, --port 8000, --served-model-name "
        f"{SERVED_MODEL_NAME} MODEL, --max-model-len {DEFAULT_MAX_MODEL_LEN}, "
        "--generation-config vllm, --override-generation-config '{\"temperature\": 0.0}' "
        "(greedy). On CPU builds, unless set: VLLM_CPU_KVCACHE_SPACE=4 and, on 4 cores or "
        "fewer, VLLM_CPU_NUM_OF_RESERVED_CPU=0.",
        "API keys: --api-key KEY (repeatable) or the environment variable VLLM_API_KEY (one "
        "key). They reach the server through its environment, never its command line.",
        "The task endpoints read SEQGPT_* environment variables (SEQGPT_MAX_TEXT_CHARS, "
        "SEQGPT_MAX_LABELS, ...: see the README's Settings); a bad value stops the launch at "
        "once.",
        "Exit status: 0 after a requested stop (SIGTERM, SIGINT, SIGHUP); the server's status "
        "when it failed (128+N when killed by signal N); 1 when it stopped by itself (its "
        "engine died); 2 for a usage or setup error.",
    ]
)
STATUS_HELP = "\n\n".join(
    [
        "Print one line saying how the server at --url is doing: up, unhealthy, draining or "
        "down, its model and device, and the requests running and waiting in its engine.",
        "It asks GET /v1/status; a server without that route is asked /health, /v1/models and "
        "/metrics instead (device: unknown).",
        f"Exit status: {status_cli.EXIT_HEALTHY} healthy; {status_cli.EXIT_UNHEALTHY} the "
        "server answers but is not healthy (its engine is down) or is draining before a stop; "
        f"2 a usage error; {status_cli.EXIT_DOWN} down (nothing answers in time); "
        f"{status_cli.EXIT_UNAUTHORIZED} the server refused the key or wants one.",
    ]
)

app = typer.Typer(
    add_completion=False,
    help=APP_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command(
    help=SERVE_HELP,
    options_metavar="[MODEL] [--api-key KEY] [VLLM FLAGS]",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def serve(
    ctx: typer.Context,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            "--api_key",
            metavar="KEY",
            help="Require this bearer key on /v1/* (repeatable; default: $VLLM_API_KEY).",
        ),
    ] = None,
) -> None:
    """Start and supervise the server (help: SERVE_HELP)."""
    from serving.process.launcher import api_keys, launch

    if any(not key for key in api_key or []):
        _fail("--api-key needs a non-empty key")
    _hide_keys_from_process_list(api_key or [])
    raise typer.Exit(launch(list(ctx.args), api_keys(api_key or [], os.environ), os.environ))


def _hide_keys_from_process_list(keys: list[str]) -> None:
    """Blank the keys out of our own title (/proc/PID/cmdline) as soon as we run."""
    if not keys:
        return
    from setproctitle import setproctitle

    title = " ".join(sys.argv)
    for key in keys:
        title = title.replace(key, "***")
    setproctitle(title)


@app.command(help=STATUS_HELP)
def status(
    url: Annotated[
        str, typer.Option(metavar="URL", help="The server's address.")
    ] = status_cli.DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", metavar="KEY", help="The server's key (default: $VLLM_API_KEY)."),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for each answer.")] = 5.0,
) -> None:
    """Print one line on how a server is doing; the exit status says it too (STATUS_HELP)."""
    if not url.startswith(("http://", "https://")):
        _fail(f"--url must start with http:// or https://, not {url!r}")
    key = api_key if api_key is not None else os.environ.get("VLLM_API_KEY")
    raise typer.Exit(status_cli.run(url, key, timeout=timeout))


BATCH_HELP = "\n\n".join(
    [
        "{what} every row of INPUT and append one JSON line per row to OUTPUT.",
        "INPUT is JSONL (or CSV, by its .csv extension, with a header row): a text field per row, "
        "an optional id (else the row's 1-based line number; CSV: record number) and optional "
        "labels (a list or a comma string) that override --labels.",
        "OUTPUT lines hold the row's id, its row number and the REST answer of {route} ({fields}), "
        "or an error in the API's error body for that row alone (a bad row, a duplicate id: the "
        "run goes on). Lines are written as rows complete. Ctrl-C stops cleanly; run the same "
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
_DTYPE = Annotated[
    str | None,
    typer.Option(
        help="--model: weights dtype: auto (default), bfloat16, float16, float32.",
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


@app.command(
    help=BATCH_HELP.format(
        what="Classify", route="/v1/classify", fields="label, labels, truncated, usage"
    )
)
def classify(
    input_file: _INPUT,
    output: _OUTPUT,
    labels: _LABELS = None,
    multi_label: Annotated[
        bool, typer.Option("--multi-label", help="Every label the model names, not one.")
    ] = False,
    model: _MODEL = None,
    url: _URL = None,
    api_key: _API_KEY = None,
    concurrency: _CONCURRENCY = None,
    dtype: _DTYPE = None,
    max_model_len: _MAX_MODEL_LEN = None,
    max_num_seqs: _MAX_NUM_SEQS = None,
    enforce_eager: _EAGER = None,
) -> None:
    """Classify every row of a file (help: BATCH_HELP)."""
    task = "classify_multi" if multi_label else "classify"
    engine = {"dtype": dtype, "max_model_len": max_model_len, "max_num_seqs": max_num_seqs}
    engine["enforce_eager"] = enforce_eager
    raise typer.Exit(
        _batch(task, input_file, output, labels, model, url, api_key, concurrency, engine)
    )


@app.command(
    help=BATCH_HELP.format(
        what="Extract the fields of",
        route="/v1/extract",
        fields="fields, ungrounded, truncated, usage",
    )
)
def extract(
    input_file: _INPUT,
    output: _OUTPUT,
    labels: _LABELS = None,
    model: _MODEL = None,
    url: _URL = None,
    api_key: _API_KEY = None,
    concurrency: _CONCURRENCY = None,
    dtype: _DTYPE = None,
    max_model_len: _MAX_MODEL_LEN = None,
    max_num_seqs: _MAX_NUM_SEQS = None,
    enforce_eager: _EAGER = None,
) -> None:
    """Extract the fields of every row of a file (help: BATCH_HELP)."""
    engine = {"dtype": dtype, "max_model_len": max_model_len, "max_num_seqs": max_num_seqs}
    engine["enforce_eager"] = enforce_eager
    raise typer.Exit(
        _batch("extract", input_file, output, labels, model, url, api_key, concurrency, engine)
    )


def _batch(
    task: str,
    input_file: Path,
    output: Path,
    labels: str | None,
    model: str | None,
    url: str | None,
    api_key: str | None,
    concurrency: int | None,
    engine: dict[str, Any],
) -> int:
    """Check the options, then run the batch here (--url) or in a child (--model)."""
    from serving.batch.child import engine_problems, run_in_child

    if (model is None) == (url is None):
        _fail(
            "pass --model DIR (vLLM in this process) or --url URL (a running server), one of them"
        )
    flags = {name: value for name, value in engine.items() if value is not None}
    if url is not None and flags:
        given = ", ".join("--" + name.replace("_", "-") for name in flags)
        _fail(f"{given} set the in-process engine: use them with --model, not --url")
    if url is not None and not url.startswith(("http://", "https://")):
        _fail(f"--url must start with http:// or https://, not {url!r}")
    if flags.get("dtype", "auto") not in _DTYPES:
        _fail(f"--dtype must be one of {', '.join(_DTYPES)}, not {flags['dtype']!r}")
    if url is not None:
        return _batch_remote(task, input_file, output, labels, url, api_key, concurrency)
    problems = engine_problems(model or "", os.environ)
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        return 2
    # vLLM reads its log level when it is imported, in the child.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    job: dict[str, Any] = {"task": task, "input": str(input_file), "output": str(output)}
    job |= {"labels": labels, "concurrency": concurrency}
    return run_in_child(job, model or "", flags)


def _batch_remote(
    task: str,
    input_file: Path,
    output: Path,
    labels: str | None,
    url: str,
    api_key: str | None,
    concurrency: int | None,
) -> int:
    from serving.batch.job import BatchJob, run_batch
    from serving.batch.remote import http_source

    if api_key is not None:
        _hide_keys_from_process_list([api_key])
    job = BatchJob(task, input_file, output, labels, concurrency)
    return run_batch(job, http_source(url, api_key, concurrency))


@app.command("make-test-model")
def make_test_model_command(
    directory: Annotated[Path, typer.Argument(help="New or empty folder to write it to.")],
    size: Annotated[str, typer.Option(help="tiny (seconds) or 560m (SeqGPT-560M's shape).")] = (
        "tiny"
    ),
    seed: Annotated[int, typer.Option(help="Random seed of the weights.")] = 0,
) -> None:
    """Write a random-weight BLOOM checkpoint with SeqGPT's architecture (answers are nonsense)."""
    from serving.process.testmodel import SIZES, make_test_model

    if size not in SIZES:
        _fail(f"--size must be one of {', '.join(sorted(SIZES))}, not {size!r}")
    if directory.exists() and not directory.is_dir():
        _fail(f"{directory} is a file; pass a new or empty folder")
    if directory.is_dir() and any(directory.iterdir()):
        _fail(f"{directory} is not empty; pass a new or empty folder, or remove it first")
    path = make_test_model(directory, size, seed)  # type: ignore[arg-type]
    typer.echo(f"wrote a random-weight {size} test model to {path}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the command, print usage errors as one line."""
    try:
        status = app(args=argv, prog_name="seqgpt-serve", standalone_mode=False)
    except typer.Abort:
        return 130
    except typer.TyperException as exc:  # usage errors: a missing command, an unknown option …
        context = getattr(exc, "ctx", None)
        command = context.command_path if context else "seqgpt-serve"
        typer.echo(f"error: {exc.format_message().rstrip('.')}; see: {command} --help", err=True)
        return int(exc.exit_code)
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
