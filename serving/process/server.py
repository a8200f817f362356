"""The server process: vLLM's OpenAI API server entry point with SeqGPT's defaults.

``seqgpt-serve serve`` runs ``python -m serving.entry <vLLM flags>`` (``serving.entry`` runs this
module's ``main``). The flags are parsed with vLLM's own parser (``make_arg_parser``), so a value
counts as set however vLLM takes it: a flag as ``--flag v`` or ``--flag=v``, a key of the
``--config`` YAML, or the positional model. SeqGPT's defaults are appended only for what is still
unset, the model is checked (``serving.process.modelcheck``) and, on the CPU backend, the parallel
sizes (``serving.process.cpuparallel``), and vLLM's ``serve`` command runs
with the completed flags, as ``vllm serve`` runs it: one API server in this process, or, with
``--api-server-count N > 1`` (or data parallel), vLLM's manager process here, the N API servers and
the engine below it. The model always reaches it as ``--model``. On vLLM's CPU backend an unset
``--dtype`` is the CPU's own (``serving.core.cpu``: bf16 only where the CPU computes it natively),
said in one line at start-up.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from serving.core.cpu import Dtype

from serving.process.exits import exit_after, exit_quietly
from serving.process.launcher import is_cpu_build

__all__ = [
    "DEFAULT_MAX_MODEL_LEN",
    "DEFAULT_MODEL",
    "SERVED_MODEL_NAME",
    "UsageError",
    "added_flags",
    "dtype_default",
    "given_dtype",
    "main",
    "parse_vllm_args",
    "served_model",
]

DEFAULT_MODEL = "DAMO-NLP/SeqGPT-560M"
SERVED_MODEL_NAME = "seqgpt"
# SeqGPT was trained at 1024 tokens; ALiBi lets it read a little further. Prompts longer than
# this are rejected with a 400, never truncated.
DEFAULT_MAX_MODEL_LEN = 2048
DEFAULT_MAX_QUEUED_REQS = 1024
CPU_BLOCK_SIZE = 32  # the smallest KV block vLLM's CPU attention takes (multiples of 32)
CHAT_TEMPLATE = Path(__file__).with_name("chat_template.jinja")
_UNSET: Any = object()  # the parser's default for every flag we give a default to


def _defaults(model: str) -> dict[str, list[str]]:
    """SeqGPT's flags by vLLM destination, each used only when the user set nothing for it."""
    from serving.core.forcing import PROCESSOR  # imports vLLM, as every caller here already has

    return {
        "model": ["--model", model],
        "host": ["--host", "0.0.0.0"],
        "port": ["--port", "8000"],
        "served_model_name": ["--served-model-name", SERVED_MODEL_NAME, model],
        "max_model_len": ["--max-model-len", str(DEFAULT_MAX_MODEL_LEN)],
        # Greedy by default on /v1/completions too, never the sampling defaults the model's
        # generation_config would bring (it holds only token ids: temperature 1.0).
        "generation_config": ["--generation-config", "vllm"],
        "override_generation_config": [
            "--override-generation-config",
            json.dumps({"temperature": 0.0}),
        ],
        # Requests vLLM takes in at once, from every route (ours hold SEQGPT_MAX_INFLIGHT
        # prompts at most): beyond it a fast 503 with Retry-After, never an unbounded queue.
        "max_num_queued_reqs": ["--max-num-queued-reqs", str(DEFAULT_MAX_QUEUED_REQS)],
        # SeqGPT has no chat template (vLLM would refuse /v1/chat/completions): the last user
        # message is the prompt, so chat clients get exactly what completions give.
        "chat_template": ["--chat-template", str(CHAT_TEMPLATE)],
        # Scores read each label by forced decoding (serving.core.scoring), at a lower priority
        # than task prompts: a plain request never waits behind the reads of scored ones.
        "logits_processors": ["--logits-processors", PROCESSOR],
        "scheduling_policy": ["--scheduling-policy", "priority"],
        # The prefix cache shares whole blocks: with the CPU backend's smallest block (its
        # default is 128) the reads of a ~70-token classification prompt share its first 64.
        **({"block_size": ["--block-size", str(CPU_BLOCK_SIZE)]} if is_cpu_build() else {}),
    }


class UsageError(Exception):
    """A flag vLLM's parser refuses; the message is one line for people."""


def parse_vllm_args(argv: list[str]) -> argparse.Namespace:
    """``argv`` as vLLM's server parses it, with ``_UNSET`` for each of our flags left unset."""
    # vLLM's parser: seconds to import; engine processes import this module and need none.
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    class Parser(FlexibleArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise UsageError(f"{message}; see: .venv/bin/seqgpt-serve serve --help")

    parser = make_arg_parser(Parser(prog="seqgpt-serve serve"))  # type: ignore[no-untyped-call]
    parser.set_defaults(**dict.fromkeys([*_defaults(""), "dtype"], _UNSET))
    try:
        return parser.parse_args(argv)  # type: ignore[no-any-return]
    except (ValueError, OSError, AssertionError) as exc:  # --config: missing, not YAML, twice …
        raise UsageError(f"--config: {str(exc).splitlines()[0]}") from exc


def served_model(args: argparse.Namespace) -> str:
    """The model vLLM will serve: positional (as ``vllm serve`` has it), else --model, else ours."""
    if args.model_tag is not None:
        return str(args.model_tag)
    return DEFAULT_MODEL if args.model is _UNSET else str(args.model)


def given_dtype(args: argparse.Namespace) -> str | None:
    """The ``--dtype`` the user set (flag or ``--config``), or None."""
    return None if args.dtype is _UNSET else str(args.dtype)


def added_flags(args: argparse.Namespace, dtype: str | None = None) -> list[str]:
    """The flags to append so that every unset one of ours gets SeqGPT's default (``dtype``:
    the ``--dtype`` for an unset one, None to leave it vLLM's)."""
    model = served_model(args)
    added: list[str] = []
    for dest, flags in _defaults(model).items():
        if getattr(args, dest) is _UNSET or (dest == "model" and args.model_tag is not None):
            added += flags
    if dtype is not None and args.dtype is _UNSET:
        added += ["--dtype", dtype]
    return added


def dtype_default(given: str | None) -> tuple[Dtype | None, str]:
    """On vLLM's platform here: the ``--dtype`` to add for ``given`` (the user's, or None) and
    the start-up line saying which and why (``serving.core.cpu.start_dtype``)."""
    # vLLM: as in parse_vllm_args.
    from vllm.platforms import current_platform

    from serving.core.cpu import cpu_facts, start_dtype

    return start_dtype(str(current_platform.device_type), given, cpu_facts())


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"{message}\n")
    exit_quietly(2)


def main() -> NoReturn:
    """Parse, complete and check the flags, then run vLLM's API server; exit with its status."""
    argv = sys.argv[1:]
    try:
        args = parse_vllm_args(argv)
    except UsageError as exc:
        _fail(f"error: {exc}")
    if args.api_key:
        _fail(
            "error: API keys go through --api-key KEY or VLLM_API_KEY, not the --config file "
            "(the launcher hands them to the server through its environment)"
        )
    # vLLM, and the model check that reaches the hub: only in main.
    import vllm.envs

    from serving.process.modelcheck import model_problem

    problem = model_problem(
        served_model(args),
        revision=args.revision,
        token=args.hf_token,
        download_dir=args.download_dir,
        use_modelscope=vllm.envs.VLLM_USE_MODELSCOPE,
    )
    if problem:
        _fail(problem)
    if is_cpu_build():
        _check_cpu_parallel(args)
    dtype, line = dtype_default(given_dtype(args))
    if line:
        sys.stderr.write(f"{line}\n")
    sys.argv = [sys.argv[0], *argv, *added_flags(args, dtype)]
    exit_after(lambda: _serve(sys.argv[1:]))


def _check_cpu_parallel(args: argparse.Namespace) -> None:
    """Exit with one line if vLLM's CPU backend cannot bind these parallel workers' threads."""
    # Looked up at call time, so that tests can stand in for the machine's NUMA nodes.
    from serving.process.cpuparallel import numa_nodes, parallel_problem

    sizes = (args.tensor_parallel_size, args.pipeline_parallel_size, args.data_parallel_size)
    problem = parallel_problem(*sizes, os.environ, numa_nodes())
    if problem:
        _fail(problem)


def _serve(argv: list[str]) -> None:
    """Run vLLM's ``serve`` command (what ``vllm serve`` runs) with ``argv``: one API server in
    this process, or, with ``--api-server-count N > 1`` or data parallel, vLLM's manager process
    here and the API servers below it (``serving.process.apiservers`` relays the drain)."""
    # vLLM's serve command: seconds to import; engine processes import this module and need none.
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.entrypoints.serve.utils.api_utils import cli_env_setup
    from vllm.logger import configure_logging_from_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    # Deferred with vLLM's own imports above: it patches vLLM's serve module.
    from serving.process.apiservers import relay_drain

    try:
        cli_env_setup()  # type: ignore[no-untyped-call]
        parser = make_arg_parser(FlexibleArgumentParser(prog="seqgpt-serve serve"))  # type: ignore[no-untyped-call]
        args = parser.parse_args(argv)
        configure_logging_from_args(args)
        command = ServeSubcommand()
        command.validate(args)
        relay_drain()
        command.cmd(args)
    except ValueError as exc:  # a combination vLLM's serve command refuses before it starts
        _fail(f"error: {exc}")


class _DropOwnDefaultNoise(logging.Filter):
    """Drops vLLM's warning about the reserved-core count the launcher sets on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        own_default = os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU") == "0"
        noise = str(record.msg).startswith("VLLM_CPU_NUM_OF_RESERVED_CPU is less than")
        return not (own_default and noise)


# At import, not in main(): vLLM spawns its engine core and workers with multiprocessing's
# "spawn", which imports this module (as __mp_main__) in each of them, and the warning is
# logged in the engine core.
logging.getLogger("vllm.utils.ompmultiprocessing").addFilter(_DropOwnDefaultNoise())

if __name__ == "__main__":
    main()
