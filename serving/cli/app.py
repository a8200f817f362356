"""The ``seqgpt-serve`` command: ``serve`` (the launcher), ``status``, ``classify`` and
``extract`` (batch jobs over a file: ``serving.cli.batch``), ``eval`` (a batch job scored against
gold answers: ``serving.cli.evaluate``), ``tenants new`` (a key for the tenants file:
``serving.cli.tenants``) and ``make-test-model``.

Every user error is one line on stderr saying what to do, with exit status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from serving.cli import status as status_cli
from serving.cli.batch import add_batch_commands
from serving.cli.common import fail, hide_keys_in_argv
from serving.cli.evaluate import add_eval_command
from serving.cli.options import API_KEY_FILE, read_key_file
from serving.cli.tenants import add_tenants_commands
from serving.process.server import DEFAULT_MAX_MODEL_LEN, DEFAULT_MODEL, SERVED_MODEL_NAME

__all__ = ["app", "main"]

APP_HELP = (
    "Serve the zero-shot NLU model SeqGPT-560M on vLLM (serve), say how a running server is "
    "doing (status), run it over every row of a file (classify, extract), score it on "
    "labelled rows (eval), make a tenant's key (tenants new), or write a "
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
        "(greedy); on vLLM's CPU backend --dtype bfloat16 where the CPU has native bf16 "
        "(AVX-512-bf16, AMX), else float32 (said in one line at start-up). On CPU builds, "
        "unless set: VLLM_CPU_KVCACHE_SPACE=4 and, on 4 cores or fewer, "
        "VLLM_CPU_NUM_OF_RESERVED_CPU=0.",
        "API keys: --api-key-file FILE (one key, its first line), --api-key KEY (repeatable; "
        "blanked out of ps as the command starts, but visible until then: prefer the file) or "
        "the environment variable VLLM_API_KEY (one key). They reach the server through its "
        "environment, never its command line.",
        "--user NAME: when started as root, become NAME (its groups and HOME) before anything "
        "else, so that neither the launcher, nor the server, nor its engine runs as root "
        "(deploy/supervisord.conf passes it); ignored when not started as root.",
        "The task endpoints read SEQGPT_* environment variables (SEQGPT_MAX_TEXT_CHARS, "
        "SEQGPT_MAX_LABELS, ...: see docs/settings.md); a bad value stops the launch at "
        "once.",
        "Exit status: 0 after a requested stop (SIGTERM, SIGINT, SIGHUP); the server's status "
        "when it failed (128+N when killed by signal N); 1 when it stopped by itself (its "
        "engine died); 2 for a usage or setup error.",
    ]
)
STATUS_HELP = "\n\n".join(
    [
        "Print one line saying how the server at --url is doing: up, unhealthy, draining or "
        "down, its model, device (with the CPU's kernel set and native bf16 on the CPU "
        "backend) and dtype, and the requests running and waiting in its engine.",
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
add_batch_commands(app)
add_eval_command(app)
add_tenants_commands(app)


@app.command(
    help=SERVE_HELP,
    options_metavar="[MODEL] [--api-key KEY] [--user NAME] [VLLM FLAGS]",
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
    api_key_file: API_KEY_FILE = None,
    user: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Started as root, run as this user (never as root)."),
    ] = None,
) -> None:
    """Start and supervise the server (help: SERVE_HELP)."""
    # the launcher: only for serve, so the CLI's other commands start fast.
    from serving.process.launcher import api_keys, launch

    if any(not key for key in api_key or []):
        fail("--api-key needs a non-empty key")
    given = [*(api_key or []), *([read_key_file(api_key_file)] if api_key_file else [])]
    keys = api_keys(given, os.environ)
    raise typer.Exit(launch(list(ctx.args), keys, os.environ, user=user))


@app.command(help=STATUS_HELP)
def status(
    url: Annotated[
        str, typer.Option(metavar="URL", help="The server's address.")
    ] = status_cli.DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", metavar="KEY", help="The server's key (default: $VLLM_API_KEY)."),
    ] = None,
    api_key_file: API_KEY_FILE = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for each answer.")] = 5.0,
) -> None:
    """Print one line on how a server is doing; the exit status says it too (STATUS_HELP)."""
    if not url.startswith(("http://", "https://")):
        fail(f"--url must start with http:// or https://, not {url!r}")
    key = read_key_file(api_key_file) if api_key_file is not None else api_key
    key = key if key is not None else os.environ.get("VLLM_API_KEY")
    raise typer.Exit(status_cli.run(url, key, timeout=timeout))


@app.command("make-test-model")
def make_test_model_command(
    directory: Annotated[Path, typer.Argument(help="New or empty folder to write it to.")],
    size: Annotated[
        str,
        typer.Option(
            help="tiny (seconds), 560m (SeqGPT-560M's shape) or 7b1 (SeqGPT-7B1's shape, "
            "2 of its 30 layers: 2.9 GB)."
        ),
    ] = "tiny",
    seed: Annotated[int, typer.Option(help="Random seed of the weights.")] = 0,
    layers: Annotated[
        int | None, typer.Option(help="Transformer layers (default: the size's own).")
    ] = None,
    teach: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="--size tiny: then train it (about a minute) until it answers the extractions "
            'of FILE exactly, JSONL lines {"text": ..., "fields": {"人物": ["张三"], "公司": []}} '
            "(1 to 6 fields each, in the order asked): a test model that finds entities.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a random-weight BLOOM checkpoint with SeqGPT's architecture (answers are nonsense)."""
    # torch and transformers: only for make-test-model.
    from serving.testmodels.random_model import SIZES, make_test_model
    from serving.testmodels.teaching import TeachingError, read_lessons, teach_model

    if size not in SIZES:
        fail(f"--size must be one of {', '.join(sorted(SIZES))}, not {size!r}")
    if layers is not None and layers < 1:
        fail(f"--layers must be at least 1, not {layers}")
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} is a file; pass a new or empty folder")
    if directory.is_dir() and any(directory.iterdir()):
        fail(f"{directory} is not empty; pass a new or empty folder, or remove it first")
    if teach is not None and size != "tiny":
        fail("--teach is for --size tiny")
    try:
        lessons = read_lessons(teach) if teach is not None else []
    except (OSError, UnicodeDecodeError, TeachingError) as exc:
        fail(str(exc))
    path = make_test_model(directory, size, seed, layers)  # type: ignore[arg-type]
    if lessons:
        steps = teach_model(path, lessons, seed)  # a TeachingError is a bug: its traceback shows
        typer.echo(
            f"wrote a tiny test model taught {len(lessons)} answers ({steps} steps) to {path}"
        )
        return
    typer.echo(f"wrote a random-weight {size} test model to {path}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the command, print usage errors as one line."""
    # The keys out of ps before anything else (typer's parsing included).
    hide_keys_in_argv(sys.argv[1:] if argv is None else argv)
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
