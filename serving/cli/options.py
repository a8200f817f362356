"""The options the batch commands share (``classify``, ``extract``, ``eval``), each written once.

Each option is a typer ``Annotated`` alias, public here, that every command using it takes as
its parameter's type. The options of a run (the engine, the server, the rows in flight) are the
same in all three commands: ``with_run_options`` gives a command all of them at once, as one
``RunOptions`` argument, so no command repeats them in its signature.

A key is best given as ``--api-key-file FILE`` or ``$VLLM_API_KEY``: ``--api-key KEY`` is on the
command line, where ``ps`` shows it to every user until the command blanks it out
(``serving.cli.common.hide_keys_in_argv``, first thing in ``main``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from serving.cli.common import fail
from serving.process.server import DEFAULT_MAX_MODEL_LEN

__all__ = [
    "API_KEY",
    "API_KEY_FILE",
    "CONCURRENCY",
    "DTYPE",
    "EAGER",
    "INPUT",
    "LABELS",
    "MAX_MODEL_LEN",
    "MAX_NUM_SEQS",
    "MAX_ROW_BYTES",
    "MODEL",
    "MULTI_LABEL",
    "SCHEMA",
    "URL",
    "RunOptions",
    "read_key_file",
    "with_run_options",
]

INPUT = Annotated[
    Path, typer.Argument(metavar="INPUT", help="JSONL or .csv file, one row per text.")
]
LABELS = Annotated[
    str | None,
    typer.Option(help='Labels for rows without their own, e.g. "财经,体育,娱乐".'),
]
SCHEMA = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help='A JSON file holding an extraction schema, e.g. {"人物": ["职位", "就职于"]}, '
        "sent instead of labels for every row (a row's own labels are then ignored).",
        show_default=False,
    ),
]
MULTI_LABEL = Annotated[
    bool, typer.Option("--multi-label", help="Every label the model names, not one.")
]
MODEL = Annotated[
    str | None,
    typer.Option(
        metavar="DIR", help="Run vLLM here on this model folder or hub id.", show_default=False
    ),
]
URL = Annotated[
    str | None,
    typer.Option(metavar="URL", help="Send rows to this server, e.g. http://localhost:8000."),
]
API_KEY = Annotated[
    str | None,
    typer.Option(
        metavar="KEY",
        envvar="VLLM_API_KEY",
        help="The server's key (with --url); --api-key-file or $VLLM_API_KEY keep it out of ps.",
    ),
]
API_KEY_FILE = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="Read the server's key from FILE (its first line), instead of --api-key.",
        show_default=False,
    ),
]
CONCURRENCY = Annotated[
    int | None,
    typer.Option(min=1, help="Rows in flight (default: the engine's max-num-seqs; 64 with --url)."),
]
PRIORITY = Annotated[
    str | None,
    typer.Option(
        metavar="LEVEL",
        help="--url: how the server ranks the rows: batch (the default: they yield to "
        "interactive requests) or interactive.",
        show_default=False,
    ),
]
MAX_ROW_BYTES = Annotated[
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
DTYPE = Annotated[
    str | None,
    typer.Option(
        help="--model: weights dtype: auto, bfloat16, float16, float32 (default: as the "
        "server, on the CPU backend bfloat16 where the CPU has native bf16, else float32).",
        show_default=False,
    ),
]
MAX_MODEL_LEN = Annotated[
    int | None,
    typer.Option(
        min=16,
        help=f"--model: context in tokens (default {DEFAULT_MAX_MODEL_LEN}, as the server); "
        "a row whose prompt does not fit is a row error.",
        show_default=False,
    ),
]
MAX_NUM_SEQS = Annotated[
    int | None, typer.Option(min=1, help="--model: engine batch size (default: vLLM's).")
]
EAGER = Annotated[
    bool | None,
    typer.Option(
        "--enforce-eager",
        help="--model: skip torch.compile (starts in ~30 s, not ~90 s; runs ~7 % slower).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class RunOptions:
    """How a batch run is answered: the engine here (``model``) or a server (``url``)."""

    model: str | None = None
    url: str | None = None
    api_key: str | None = None
    concurrency: int | None = None
    max_row_bytes: int | None = None
    engine: dict[str, Any] | None = None
    """The in-process engine's flags (dtype, max_model_len, max_num_seqs, enforce_eager)."""
    priority: str | None = None
    """``X-SeqGPT-Priority`` of the rows sent to a server (unset: batch)."""


def read_key_file(path: Path) -> str:
    """The key in ``path``'s first line (white space stripped); a usage error if it has none."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--api-key-file {path}: cannot read it ({exc})")
    key = lines[0].strip() if lines else ""
    if not key:
        fail(f"--api-key-file {path}: its first line holds no key")
    return key


def _run_options(
    model: MODEL = None,
    url: URL = None,
    api_key: API_KEY = None,
    api_key_file: API_KEY_FILE = None,
    concurrency: CONCURRENCY = None,
    priority: PRIORITY = None,
    max_row_bytes: MAX_ROW_BYTES = None,
    dtype: DTYPE = None,
    max_model_len: MAX_MODEL_LEN = None,
    max_num_seqs: MAX_NUM_SEQS = None,
    enforce_eager: EAGER = None,
) -> RunOptions:
    """The options of a run: this signature is the one the commands show."""
    if api_key_file is not None:
        api_key = read_key_file(api_key_file)
    engine = {"dtype": dtype, "max_model_len": max_model_len, "max_num_seqs": max_num_seqs}
    engine["enforce_eager"] = enforce_eager
    return RunOptions(model, url, api_key, concurrency, max_row_bytes, engine, priority)


_SHARED = list(inspect.signature(_run_options, eval_str=True).parameters.values())


def with_run_options(
    command: Callable[..., None], drop: tuple[str, ...] = ()
) -> Callable[..., None]:
    """``command(own options..., run: RunOptions)`` as typer sees it: its own options but
    ``run`` (and those named in ``drop``), then every option of a run."""
    own = inspect.signature(command, eval_str=True).parameters.values()
    kept = [p for p in own if p.name != "run" and p.name not in drop]

    def typed(**values: Any) -> None:
        shared = {p.name: values.pop(p.name) for p in _SHARED}
        command(**values, run=_run_options(**shared))

    typed.__name__, typed.__doc__ = command.__name__, command.__doc__
    typed.__signature__ = inspect.Signature([*kept, *_SHARED])  # type: ignore[attr-defined]
    return typed
