"""SeqGPT's defaults apply only where the user set nothing, however vLLM's parser was told:
``--flag v``, ``--flag=v``, the ``--config`` YAML, or the positional model. Each case parses the
completed flags with vLLM's own parser, as the server does."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from serving.process import exits as process_exits
from serving.process import server as entry
from serving.process.server import (
    CHAT_TEMPLATE,
    DEFAULT_MODEL,
    UsageError,
    added_flags,
    dtype_default,
    given_dtype,
    parse_vllm_args,
)

DEFAULTS = {
    "model": DEFAULT_MODEL,
    "host": "0.0.0.0",
    "port": 8000,
    "served_model_name": ["seqgpt", DEFAULT_MODEL],
    "max_model_len": 2048,
    "generation_config": "vllm",
    "override_generation_config": {"temperature": 0.0},
    "max_num_queued_reqs": 1024,
    "chat_template": str(CHAT_TEMPLATE),
}


def _served(argv: list[str], dtype: str | None = None) -> argparse.Namespace:
    """What vLLM's entry point parses from the flags the server gets (``dtype``: the CPU's)."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    completed = [*argv, *added_flags(parse_vllm_args(argv), dtype)]
    return make_arg_parser(FlexibleArgumentParser()).parse_args(completed)


def _config(tmp_path: Path, **values: Any) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items()))
    return str(path)


def _expect(args: argparse.Namespace, **changed: Any) -> None:
    for dest, value in {**DEFAULTS, **changed}.items():
        assert getattr(args, dest) == value, dest


def test_nothing_set_gives_every_default() -> None:
    _expect(_served([]))


def test_a_positional_model_is_served() -> None:
    _expect(_served(["./my-model"]), model="./my-model", served_model_name=["seqgpt", "./my-model"])


def test_the_config_file_wins_over_our_defaults(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        model="./from-yaml",
        port=9123,
        **{"max-model-len": 512, "served-model-name": ["mine"]},
    )
    _expect(
        _served(["--config", config]),
        model="./from-yaml",
        port=9123,
        max_model_len=512,
        served_model_name=["mine"],
    )


def test_a_positional_model_wins_over_the_config_files(tmp_path: Path) -> None:
    config = _config(tmp_path, model="./from-yaml")
    args = _served(["./positional", "--config", config])
    _expect(args, model="./positional", served_model_name=["seqgpt", "./positional"])


@pytest.mark.parametrize(
    ("argv", "changed"),
    [
        (["--max-model-len=1024"], {"max_model_len": 1024}),
        (["--max-model-len", "1024"], {"max_model_len": 1024}),
        (["--max_model_len", "1024"], {"max_model_len": 1024}),
        (["--port=9001", "--host", "127.0.0.1"], {"port": 9001, "host": "127.0.0.1"}),
        (["--model", "./m"], {"model": "./m", "served_model_name": ["seqgpt", "./m"]}),
        (
            ["--model=./m", "--served-model-name", "a", "b"],
            {"model": "./m", "served_model_name": ["a", "b"]},
        ),
        (["--generation-config", "auto"], {"generation_config": "auto"}),
        (
            ["--override-generation-config", '{"top_k": 5}'],
            {"override_generation_config": {"top_k": 5}},
        ),
    ],
)
def test_flags_in_any_form_win_over_our_defaults(argv: list[str], changed: dict[str, Any]) -> None:
    _expect(_served(argv), **changed)


def test_an_unset_dtype_is_the_one_chosen_for_the_cpu_and_vllms_without_one() -> None:
    args = parse_vllm_args(["./m"])
    assert given_dtype(args) is None
    assert _served(["./m"], "float32").dtype == "float32"
    assert _served(["./m"], "bfloat16").dtype == "bfloat16"
    assert _served(["./m"]).dtype == "auto"  # on CUDA: vLLM's own choice


@pytest.mark.parametrize(
    ("argv", "given"),
    [
        (["--dtype", "half"], "half"),
        (["--dtype=bfloat16"], "bfloat16"),
        (["--dtype", "auto"], "auto"),  # vLLM's own choice, asked for by name
        (["--dtype=float"], "float"),
    ],
)
def test_a_given_dtype_in_any_form_wins(argv: list[str], given: str) -> None:
    assert given_dtype(parse_vllm_args(argv)) == given
    assert _served(argv, "float32").dtype == given


def test_a_dtype_in_the_config_file_wins(tmp_path: Path) -> None:
    argv = ["--config", _config(tmp_path, dtype="bfloat16")]
    assert given_dtype(parse_vllm_args(argv)) == "bfloat16"
    assert _served(argv, "float32").dtype == "bfloat16"


def test_on_this_cpu_backend_the_default_is_the_cpus_choice() -> None:
    from serving.core.cpu import choose_dtype, cpu_facts, dtype_line

    choice = choose_dtype(cpu_facts())
    assert dtype_default(None) == (choice.dtype, dtype_line(None, choice))
    assert dtype_default("half") == (None, dtype_line("half", choice))


def test_added_flags_are_only_the_unset_ones() -> None:
    added = added_flags(parse_vllm_args(["./m", "--port", "1", "--host=h"]))
    assert "--port" not in added
    assert "--host" not in added
    assert added[:2] == ["--model", "./m"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-model-len", "abc"], "argument --max-model-len: invalid"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--config", "/nonexistent/cfg.yaml"], "--config: [Errno 2] No such file"),
        (["--config", "cfg.json"], "--config: Config file must be of a yaml/yml type"),
    ],
)
def test_flags_vllm_refuses_are_one_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as error:
        parse_vllm_args(argv)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> None:
    """entry.main() ends its process without the interpreter's teardown; here it raises."""

    def exit_(status: int) -> None:
        raise SystemExit(status)

    monkeypatch.setattr(entry, "exit_quietly", exit_)
    monkeypatch.setattr(process_exits, "exit_quietly", exit_)


@pytest.mark.usefixtures("exits")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["./no-such-folder"], "error: the model folder ./no-such-folder does not exist"),
        (["--port", "x"], "error: argument --port: "),
    ],
)
def test_the_server_refuses_a_bad_setup_in_one_line(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.argv", ["entry", *argv])
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1


@pytest.mark.usefixtures("exits")
def test_keys_in_the_config_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["entry", "--config", _config(tmp_path, **{"api-key": ["k"]})])
    with pytest.raises(SystemExit):
        entry.main()
    err = capsys.readouterr().err
    assert err.startswith("error: API keys go through --api-key KEY or VLLM_API_KEY")
    assert err.count("\n") == 1


@pytest.mark.usefixtures("exits")
def test_a_combination_vllm_serve_refuses_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """vLLM's serve command (which runs several API servers) refuses it before starting any."""
    monkeypatch.setattr("sys.argv", ["entry", str(tmp_path), "--headless", "--api-server-count=2"])
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    if lines[0].startswith("seqgpt: dtype "):  # the start-up line naming the CPU's dtype
        lines.pop(0)
    assert len(lines) == 1
    assert lines[0].startswith("error: --api-server-count=2 cannot be used with --headless")


@pytest.mark.usefixtures("exits")
@pytest.mark.parametrize("flag", ["--tensor-parallel-size", "--data-parallel-size"])
def test_parallel_workers_vllms_cpu_backend_cannot_bind_are_one_line(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before the engine starts (vLLM's own refusal comes minutes later, 40 lines long)."""
    monkeypatch.setattr("serving.process.cpuparallel.numa_nodes", lambda: 1)
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr("sys.argv", ["entry", str(tmp_path), flag, "2"])
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {flag} 2 on vLLM's CPU backend binds each of its 2 workers")
    assert "VLLM_CPU_OMP_THREADS_BIND (e.g. '0|1'" in lines[0]
