"""The command line's first touch: help on every command, one-line errors, make-test-model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.cli import app as cli
from serving.cli.app import main

COMMANDS = [[], ["serve"], ["make-test-model"]]


@pytest.mark.parametrize("command", COMMANDS, ids=["app", "serve", "make-test-model"])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_answers_help(
    command: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, flag]) == 0
    out = capsys.readouterr().out
    assert "Usage: seqgpt-serve" in out
    assert "``" not in out


def test_serve_help_names_the_defaults_it_adds_and_the_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # the help is wrapped to the terminal
    for default in [
        "DAMO-NLP/SeqGPT-560M",
        "--served-model-name seqgpt MODEL",
        "--max-model-len 2048",
        "--generation-config vllm",
        """--override-generation-config '{"temperature": 0.0}'""",
        "VLLM_CPU_NUM_OF_RESERVED_CPU=0",
        "--dtype bfloat16 where the CPU has native bf16",
        "SEQGPT_*",
        "VLLM_API_KEY",
        "--config",
        "Exit status",
    ]:
        assert default in out, default


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["-x"],
        ["make-test-model"],
        ["make-test-model", "x", "--size", "huge"],
        ["make-test-model", "x", "--nope"],
        ["make-test-model", "x", "--size", "7b1", "--layers", "0"],
        ["serve", "--api-key", ""],
    ],
)
def test_usage_errors_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert captured.err.count("\n") == 1, captured.err


def _refuses(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_make_test_model_refuses_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("keep me")
    err = _refuses(["make-test-model", str(tmp_path / "f")], capsys)
    assert "is a file; pass a new or empty folder" in err
    assert (tmp_path / "f").read_text() == "keep me"


def test_make_test_model_refuses_a_non_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    err = _refuses(["make-test-model", str(tmp_path)], capsys)
    assert "is not empty" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_make_test_model_writes_a_labelled_bf16_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "m").mkdir()  # an empty folder is fine
    assert main(["make-test-model", str(tmp_path / "m")]) == 0
    assert "wrote a random-weight tiny test model" in capsys.readouterr().out
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["seqgpt_serve_random_weights"] is True
    # bf16: the dtype vLLM's CPU backend serves by default, so loading it does not warn per tensor.
    assert (config["hidden_size"] // config["n_head"], config["dtype"]) == (64, "bfloat16")
    assert (tmp_path / "m" / "tokenizer.json").exists()


def test_the_module_help_is_not_the_app_help() -> None:
    """The module docstring (with ``literals``) is for readers of the code, not for --help."""
    assert "``" not in cli.APP_HELP + cli.SERVE_HELP


def test_make_test_model_takes_fewer_layers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["make-test-model", str(tmp_path / "m"), "--layers", "1"]) == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["n_layer"] == 1
    assert "seqgpt_serve_full_layers" not in config  # the tiny size is all its layers


def test_make_test_model_refuses_bad_lessons_before_making_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lessons = tmp_path / "lessons.jsonl"
    lessons.write_text('{"text": "t", "fields": {"a": ["t"]}}\n{"text": "t"}\n', encoding="utf-8")
    err = _refuses(["make-test-model", str(tmp_path / "m"), "--teach", str(lessons)], capsys)
    assert f"{lessons} line 2: not a lesson" in err
    argv = ["make-test-model", str(tmp_path / "m"), "--size", "560m", "--teach", "x"]
    err = _refuses(argv, capsys)
    assert "--teach is for --size tiny" in err
    assert not (tmp_path / "m").exists()
